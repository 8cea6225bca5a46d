#!/bin/sh
# Makes sure nginx has a TLS certificate, so `docker compose up` works from a clean checkout.
# docker-compose.yml mounts this script into the nginx image's /docker-entrypoint.d/, which runs it
# before nginx starts. When TLS_CERTIFICATE and TLS_CERTIFICATE_KEY exist (yours, from your CA) it
# leaves them alone; otherwise it writes a self-signed pair for localhost there (browsers warn
# about it), once: later starts reuse it. Replace the two files to use a real certificate.
set -eu

certificate="${TLS_CERTIFICATE:?TLS_CERTIFICATE must name the certificate file}"
key="${TLS_CERTIFICATE_KEY:?TLS_CERTIFICATE_KEY must name the key file}"
me="ensure-tls-certificate"

if [ -s "$certificate" ] && [ -s "$key" ]; then
  echo "$me: using $certificate"
  exit 0
fi
if ! command -v openssl >/dev/null 2>&1; then
  echo "$me: no certificate at $certificate and no openssl to make one; put fullchain.pem and privkey.pem in deploy/certs" >&2
  exit 1
fi

mkdir -p "$(dirname "$certificate")" "$(dirname "$key")"
# Written beside the targets, then renamed: a start interrupted halfway leaves no half pair.
umask 077
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 825 \
  -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1 \
  -keyout "$key.new" -out "$certificate.new" 2>/dev/null
chmod 644 "$certificate.new"
mv "$key.new" "$key"
mv "$certificate.new" "$certificate"
echo "$me: no certificate found; wrote a self-signed one for localhost to $certificate (browsers will warn; replace it and $key with your CA's)"

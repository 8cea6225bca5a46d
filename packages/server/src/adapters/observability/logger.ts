import pino, { type DestinationStream, type Logger } from 'pino';

/** Query parameters that carry credentials: their values never reach a log line. */
const SECRET_QUERY_PARAMS = ['ticket', 'access_token', 'token'];

/**
 * A URL with credential query values replaced by `[REDACTED]` (literally, so log searches find
 * it); every other part of the query stays byte for byte as the client sent it.
 */
export function redactUrl(url: string): string {
  const queryStart = url.indexOf('?');
  if (queryStart === -1) return url;
  const parts = url
    .slice(queryStart + 1)
    .split('&')
    .map((part) => {
      const equals = part.indexOf('=');
      const rawName = equals === -1 ? part : part.slice(0, equals);
      return SECRET_QUERY_PARAMS.includes(decodeQueryName(rawName)) ? `${rawName}=[REDACTED]` : part;
    });
  return `${url.slice(0, queryStart)}?${parts.join('&')}`;
}

function decodeQueryName(name: string): string {
  try {
    return decodeURIComponent(name.replace(/\+/g, ' '));
  } catch {
    return name;
  }
}

/**
 * The process logger: JSON lines (pino). Tokens never appear: the Authorization and Cookie
 * headers are redacted wherever they are logged, and request URLs lose credential query values.
 *
 * Every redact path names its first key. A path that begins with `*` makes pino pass every key of
 * every log line, and the request id of every request's child logger, through its redactor, which
 * parses all the paths again on each call: about 1.5 KB of garbage and a few µs per request, for
 * each stream of a connect burst, to guard keys no line carries.
 */
export function createLogger(options: { level: string; destination?: DestinationStream }): Logger {
  return pino(
    {
      level: options.level,
      redact: {
        paths: [
          'req.headers.authorization',
          'req.headers.cookie',
          'headers.authorization',
          'headers.cookie',
          'accessToken',
          'ticket',
          'body.accessToken',
          'body.ticket',
        ],
        censor: '[REDACTED]',
      },
      serializers: {
        req: (request: { method?: string; url?: string; ip?: string; id?: string }) => ({
          id: request.id,
          method: request.method,
          url: redactUrl(request.url ?? ''),
          remoteAddress: request.ip,
        }),
        err: pino.stdSerializers.err,
      },
    },
    options.destination,
  );
}

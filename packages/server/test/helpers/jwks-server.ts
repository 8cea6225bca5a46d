import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

/** How the identity provider's JWKS endpoint behaves right now. */
export type JwksMode = 'ok' | 'http_500' | 'hang_up';

/** A local identity provider: signing keys and a JWKS endpoint that can be made to fail. */
export interface JwksServer {
  url: string;
  /** Fetches of the JWKS so far. */
  fetches: number;
  mode: JwksMode;
  /** Publishes the public key of `kid` (created on first use) in the key set. */
  publish(kid: string): Promise<void>;
  /** Withdraws the public key of `kid` from the key set (a revoked or rotated-out key). */
  unpublish(kid: string): void;
  /** Signs an RS256 token with the private key of `kid` (created on first use, not published). */
  sign(kid: string, claims?: Record<string, unknown>, options?: { sub?: string; typ?: string }): Promise<string>;
  close(): Promise<void>;
}

/** Starts a JWKS endpoint on 127.0.0.1:<random port>. */
export async function startJwksServer(): Promise<JwksServer> {
  const pairs = new Map<string, { privateKey: CryptoKey; publicJwk: JWK }>();
  const published: JWK[] = [];
  const keyOf = async (kid: string) => {
    let pair = pairs.get(kid);
    if (!pair) {
      const generated = await generateKeyPair('RS256');
      pair = {
        privateKey: generated.privateKey,
        publicJwk: { ...(await exportJWK(generated.publicKey)), kid, alg: 'RS256', use: 'sig' },
      };
      pairs.set(kid, pair);
    }
    return pair;
  };
  const server = createServer((request, response) => {
    state.fetches++;
    if (state.mode === 'hang_up') return void request.socket.destroy();
    if (state.mode === 'http_500') return void response.writeHead(500).end('identity provider down');
    response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: published }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const state: JwksServer = {
    url: `http://127.0.0.1:${port}/.well-known/jwks.json`,
    fetches: 0,
    mode: 'ok',
    async publish(kid) {
      published.push((await keyOf(kid)).publicJwk);
    },
    unpublish(kid) {
      const at = published.findIndex((jwk) => jwk.kid === kid);
      if (at >= 0) published.splice(at, 1);
    },
    async sign(kid, claims = {}, options = {}) {
      return new SignJWT(claims)
        .setProtectedHeader({ alg: 'RS256', kid, ...(options.typ ? { typ: options.typ } : {}) })
        .setSubject(options.sub ?? 'jwks-user')
        .setIssuedAt()
        .setExpirationTime('1h')
        .sign((await keyOf(kid)).privateKey);
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return state;
}

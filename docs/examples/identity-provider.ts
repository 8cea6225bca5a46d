import { createPublisher, realtimePlugin, type Publisher } from '@infinitescribe/server';
import Fastify, { type FastifyInstance } from 'fastify';

/** Where your identity provider publishes its keys, and what its tokens for this API carry. */
export interface IdentityProvider {
  /** e.g. https://<tenant>.eu.auth0.com/.well-known/jwks.json, or Keycloak's …/protocol/openid-connect/certs */
  jwksUrl: string;
  /** The tokens' `iss`, e.g. https://<tenant>.eu.auth0.com/ */
  issuer: string;
  /** The tokens' `aud`: this API's identifier at the provider */
  audience: string;
}

/**
 * Your app with the realtime layer under /realtime, its users' tokens verified against the
 * provider's public keys (RS256 or ES256): no shared secret, and a token the provider issued for
 * another API of yours is refused.
 */
export async function buildApp(idp: IdentityProvider, dataDir: string): Promise<FastifyInstance> {
  const app = Fastify({ pluginTimeout: 60_000 }); // the plugin opens its store while it registers
  await app.register(realtimePlugin, {
    prefix: '/realtime',
    jwt: { jwksUrl: idp.jwksUrl, issuer: idp.issuer, audience: idp.audience },
    // Refuses to start without issuer and audience, which a JWKS needs in production.
    production: true,
    dataDir,
  });
  return app;
}

/**
 * A back-end service of yours publishing with a token of its own from the same provider: a
 * machine-to-machine client (client-credentials grant) allowed the scopes
 * `events:publish events:service`. `getServiceToken` is called before every try, so it can renew.
 */
export function servicePublisher(appUrl: string, getServiceToken: () => Promise<string>): Publisher {
  return createPublisher({ baseUrl: `${appUrl}/realtime`, token: getServiceToken });
}

import type { ProviderInfo } from '@infinitescribe/protocol';
import { useEffect, useState } from 'react';
import type { ApiClient } from '../lib/api-client.js';
import { stringField } from '../lib/api-client.js';

/**
 * Says which model writes: a clear notice for the offline demo provider (a Markov chain, not an
 * AI model), the model name otherwise. Uses `GET /api/ai/provider`.
 */
export function ProviderNotice({ api }: { api: ApiClient }) {
  const [info, setInfo] = useState<Pick<ProviderInfo, 'kind' | 'model'> | 'unknown' | null>(null);
  useEffect(() => {
    const controller = new AbortController();
    api
      .get('/api/ai/provider', controller.signal)
      .then((body) => {
        const kind = stringField<ProviderInfo>(body, 'kind');
        setInfo(kind ? { kind, model: stringField<ProviderInfo>(body, 'model') ?? '' } : 'unknown');
      })
      .catch(() => controller.signal.aborted || setInfo('unknown'));
    return () => controller.abort();
  }, [api]);

  if (info === null) return null;
  if (info === 'unknown') {
    return (
      <p className="notice" data-testid="provider-notice" data-kind="unknown">
        Could not ask the server which model it uses: without AI_BASE_URL it is the offline demo model.
      </p>
    );
  }
  if (info.kind === 'offline') {
    return (
      <p className="notice" data-testid="provider-notice" data-kind="offline">
        <strong>Offline demo model — set AI_BASE_URL for a real model.</strong> It continues your text with a Markov
        chain over public-domain prose.
      </p>
    );
  }
  return (
    <p className="notice notice-quiet" data-testid="provider-notice" data-kind={info.kind}>
      Model: <strong>{info.model || info.kind}</strong>
    </p>
  );
}

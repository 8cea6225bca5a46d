import {
  FakeModelServer,
  bodyField,
  header,
  type FakeModelServerOptions,
  type FakeRefusal,
  type FakeReplyFrames,
  type FakeRequest,
  type WireFormat,
} from './fake-model-server.js';

export { FAKE_REPLY, waitUntil } from './fake-model-server.js';
export type { FakeMode, FakeRequest, RawResponse } from './fake-model-server.js';

/** Options of {@link FakeOpenAIServer.start}; all but `azure` can be changed later on the instance. */
export interface FakeOpenAIServerOptions extends FakeModelServerOptions {
  /**
   * Serve as Azure OpenAI: the key in `api-key`, the deployment in the path
   * (`/openai/deployments/{deployment}/chat/completions?api-version=…`) or the v1 API
   * (`/openai/v1/chat/completions`); the base URL is then the resource endpoint.
   */
  azure?: boolean;
}

/**
 * Model names that refuse `max_tokens` (OpenAI's reasoning models and GPT-5 on: "Unsupported
 * parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.").
 */
const MAX_COMPLETION_TOKENS_ONLY = /^(o\d|gpt-5)/;

const AZURE_DEPLOYMENT_PATH = /^\/openai\/deployments\/([^/?]+)\/chat\/completions\?(.*)$/;
const AZURE_V1_PATH = /^\/openai\/v1\/chat\/completions(\?.*)?$/;

function openAIError(status: number, message: string, extra: Record<string, unknown> = {}): FakeRefusal {
  return { status, body: { error: { message, type: 'invalid_request_error', param: null, code: null, ...extra } } };
}

/** The deployment (Azure) or model a request asks for; an error when the path is not the service's. */
function modelOf(request: FakeRequest, azure: boolean): string | FakeRefusal {
  if (!azure) {
    if (!request.path.endsWith('/chat/completions')) return openAIError(404, `no route ${request.path}`);
    const model = bodyField(request, 'model');
    return typeof model === 'string' ? model : openAIError(400, 'you must provide a model parameter');
  }
  const deployment = AZURE_DEPLOYMENT_PATH.exec(request.path);
  if (deployment) {
    // Azure answers a missing api-version with 404 "Resource not found".
    const version = new URLSearchParams(deployment[2]).get('api-version');
    if (!version) return { status: 404, body: { error: { code: '404', message: 'Resource not found' } } };
    return decodeURIComponent(deployment[1] ?? '');
  }
  if (AZURE_V1_PATH.test(request.path)) {
    const model = bodyField(request, 'model');
    return typeof model === 'string' ? model : openAIError(400, 'you must provide a model parameter');
  }
  return { status: 404, body: { error: { code: '404', message: 'Resource not found' } } };
}

function chatCompletionsWire(azure: boolean): WireFormat {
  return {
    basePath: azure ? '' : '/v1',
    judge(request, apiKey) {
      const model = modelOf(request, azure);
      if (typeof model !== 'string') return model;
      if (apiKey !== undefined) {
        const sent = azure ? header(request, 'api-key') : header(request, 'authorization')?.replace(/^Bearer /, '');
        if (sent !== apiKey) {
          return azure
            ? {
                status: 401,
                body: {
                  error: {
                    code: '401',
                    message:
                      'Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.',
                  },
                },
              }
            : openAIError(401, 'Incorrect API key provided.', { code: 'invalid_api_key' });
        }
      }
      if (MAX_COMPLETION_TOKENS_ONLY.test(model) && bodyField(request, 'max_tokens') !== undefined) {
        return openAIError(
          400,
          "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.",
          { param: 'max_tokens', code: 'unsupported_parameter' },
        );
      }
      return undefined;
    },
    frames(request): FakeReplyFrames {
      const id = `chatcmpl-fake-${request.remotePort ?? 0}`;
      const model = bodyField(request, 'model');
      const frame = (choices: unknown[], extra: Record<string, unknown> = {}) =>
        `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created: 1_700_000_000, model: typeof model === 'string' ? model : 'x', choices, ...extra })}\n\n`;
      return {
        start: () => [frame([{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }])],
        delta: (text) => frame([{ index: 0, delta: { content: text }, finish_reason: null }]),
        finish({ inputTokens, outputTokens }) {
          const frames = [frame([{ index: 0, delta: {}, finish_reason: 'stop' }])];
          const options = bodyField(request, 'stream_options') as { include_usage?: unknown } | undefined;
          if (options?.include_usage === true) {
            const usage = { prompt_tokens: inputTokens, completion_tokens: outputTokens };
            frames.push(frame([], { usage: { ...usage, total_tokens: inputTokens + outputTokens } }));
          }
          frames.push('data: [DONE]\n\n');
          return frames;
        },
        // As vLLM does: an error object where a chunk was expected, then the end.
        error: () => [
          `data: ${JSON.stringify({ error: { message: 'The model is overloaded', type: 'server_error', code: 503 } })}\n\n`,
        ],
      };
    },
    serverError: () => ({ error: { message: 'internal failure in the fake model', type: 'server_error' } }),
  };
}

/**
 * A local OpenAI Chat Completions server for tests, or Azure OpenAI's with `azure`: `data:
 * {chat.completion.chunk}` frames, a usage frame when `stream_options.include_usage` asks for one,
 * `data: [DONE]`. It refuses what the real services refuse: a wrong key (when `apiKey` is set), a
 * request off the service's paths, an Azure deployment path without `api-version`, and
 * `max_tokens` for the models that want `max_completion_tokens` (names starting `o<digit>` or
 * `gpt-5`).
 */
export class FakeOpenAIServer extends FakeModelServer {
  /** Starts listening on 127.0.0.1 and a free port. */
  static start(options: FakeOpenAIServerOptions = {}): Promise<FakeOpenAIServer> {
    return new FakeOpenAIServer(chatCompletionsWire(options.azure ?? false), options).listen();
  }
}

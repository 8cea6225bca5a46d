import {
  FakeModelServer,
  bodyField,
  header,
  namedEvent,
  type FakeModelServerOptions,
  type FakeRefusal,
  type WireFormat,
} from './fake-model-server.js';

function openAIError(status: number, message: string, param: string | null = null, code: string | null = null) {
  return { status, body: { error: { message, type: 'invalid_request_error', param, code } } } satisfies FakeRefusal;
}

const responsesWire: WireFormat = {
  basePath: '/v1',
  judge(request, apiKey) {
    if (request.path !== '/v1/responses') return openAIError(404, `Invalid URL (POST ${request.path})`);
    if (apiKey !== undefined && header(request, 'authorization') !== `Bearer ${apiKey}`) {
      return openAIError(401, 'Incorrect API key provided.', null, 'invalid_api_key');
    }
    if (typeof bodyField(request, 'model') !== 'string') return openAIError(400, 'Missing required parameter: model.');
    // The Responses API bounds the reply with max_output_tokens; the Chat Completions names are refused.
    for (const param of ['max_tokens', 'max_completion_tokens']) {
      if (bodyField(request, param) !== undefined) {
        return openAIError(400, `Unsupported parameter: '${param}'.`, param, 'unsupported_parameter');
      }
    }
    if (!Array.isArray(bodyField(request, 'input'))) return openAIError(400, "Missing required parameter: 'input'.");
    return undefined;
  },
  frames(request) {
    const model = bodyField(request, 'model') as string;
    const id = `resp_fake${request.remotePort ?? 0}`;
    const itemId = `msg_fake${request.remotePort ?? 0}`;
    let sequence = 0;
    const event = (type: string, fields: Record<string, unknown>) =>
      namedEvent(type, { type, sequence_number: sequence++, ...fields });
    const response = (status: string, extra: Record<string, unknown> = {}) => ({
      id,
      object: 'response',
      created_at: 1_700_000_000,
      status,
      model,
      output: [],
      error: null,
      incomplete_details: null,
      usage: null,
      ...extra,
    });
    let text = '';
    return {
      start: () => [
        event('response.created', { response: response('in_progress') }),
        event('response.in_progress', { response: response('in_progress') }),
        event('response.output_item.added', {
          output_index: 0,
          item: { id: itemId, type: 'message', status: 'in_progress', content: [], role: 'assistant' },
        }),
        event('response.content_part.added', {
          item_id: itemId,
          output_index: 0,
          content_index: 0,
          part: { type: 'output_text', annotations: [], text: '' },
        }),
      ],
      delta(chunk) {
        text += chunk;
        return event('response.output_text.delta', {
          item_id: itemId,
          output_index: 0,
          content_index: 0,
          delta: chunk,
          logprobs: [],
        });
      },
      finish({ inputTokens, outputTokens }) {
        const part = { type: 'output_text', annotations: [], text };
        const item = { id: itemId, type: 'message', status: 'completed', content: [part], role: 'assistant' };
        const usage = {
          input_tokens: inputTokens,
          input_tokens_details: { cached_tokens: 0 },
          output_tokens: outputTokens,
          output_tokens_details: { reasoning_tokens: 0 },
          total_tokens: inputTokens + outputTokens,
        };
        return [
          event('response.output_text.done', {
            item_id: itemId,
            output_index: 0,
            content_index: 0,
            text,
            logprobs: [],
          }),
          event('response.content_part.done', { item_id: itemId, output_index: 0, content_index: 0, part }),
          event('response.output_item.done', { output_index: 0, item }),
          event('response.completed', { response: response('completed', { output: [item], usage }) }),
        ];
      },
      error: () => [
        event('response.failed', {
          response: response('failed', { error: { code: 'server_error', message: 'The model is overloaded' } }),
        }),
      ],
    };
  },
  serverError: () => ({
    error: {
      message: 'The server had an error while processing your request.',
      type: 'server_error',
      param: null,
      code: null,
    },
  }),
};

/**
 * A local OpenAI Responses API for tests: `POST /v1/responses` with `stream: true` answered with
 * the real event stream (`response.created`, `response.in_progress`, `response.output_item.added`,
 * `response.content_part.added`, `response.output_text.delta`…, the `.done` events,
 * `response.completed` with the usage; `response.failed` mid-stream). It refuses what OpenAI
 * refuses: a wrong key (when `apiKey` is set), the Chat Completions token parameters.
 */
export class FakeOpenAIResponsesServer extends FakeModelServer {
  /** Starts listening on 127.0.0.1 and a free port. */
  static start(options: FakeModelServerOptions = {}): Promise<FakeOpenAIResponsesServer> {
    return new FakeOpenAIResponsesServer(responsesWire, options).listen();
  }
}

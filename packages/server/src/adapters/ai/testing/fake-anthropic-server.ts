import {
  FakeModelServer,
  bodyField,
  header,
  namedEvent,
  type FakeModelServerOptions,
  type FakeRefusal,
  type WireFormat,
} from './fake-model-server.js';

function anthropicError(status: number, type: string, message: string): FakeRefusal {
  return { status, body: { type: 'error', error: { type, message } } };
}

const messagesWire: WireFormat = {
  basePath: '/v1',
  judge(request, apiKey) {
    if (request.path !== '/v1/messages') return anthropicError(404, 'not_found_error', `Not found: ${request.path}`);
    if (apiKey !== undefined && header(request, 'x-api-key') !== apiKey) {
      return anthropicError(401, 'authentication_error', 'invalid x-api-key');
    }
    if (!header(request, 'anthropic-version')) {
      return anthropicError(400, 'invalid_request_error', 'anthropic-version: header is required');
    }
    const problems: string[] = [];
    if (typeof bodyField(request, 'model') !== 'string') problems.push('model: Field required');
    if (typeof bodyField(request, 'max_tokens') !== 'number') problems.push('max_tokens: Field required');
    const messages = bodyField(request, 'messages');
    if (!Array.isArray(messages) || messages.length === 0) problems.push('messages: at least one message is required');
    else if ((messages as { role?: unknown }[]).some((message) => message.role === 'system')) {
      // Anthropic has no system role in messages: the system prompt is the top-level `system`.
      problems.push('messages: Unexpected role "system". Use the top-level `system` parameter');
    }
    return problems.length > 0 ? anthropicError(400, 'invalid_request_error', problems.join('; ')) : undefined;
  },
  frames(request) {
    const model = bodyField(request, 'model') as string;
    return {
      start: () => [
        namedEvent('message_start', {
          type: 'message_start',
          message: {
            id: `msg_fake${request.remotePort ?? 0}`,
            type: 'message',
            role: 'assistant',
            content: [],
            model,
            stop_reason: null,
            stop_sequence: null,
            usage: { input_tokens: 7, output_tokens: 1 },
          },
        }),
        namedEvent('content_block_start', {
          type: 'content_block_start',
          index: 0,
          content_block: { type: 'text', text: '' },
        }),
        namedEvent('ping', { type: 'ping' }),
      ],
      delta: (text) =>
        namedEvent('content_block_delta', {
          type: 'content_block_delta',
          index: 0,
          delta: { type: 'text_delta', text },
        }),
      finish: ({ outputTokens }) => [
        namedEvent('content_block_stop', { type: 'content_block_stop', index: 0 }),
        namedEvent('message_delta', {
          type: 'message_delta',
          delta: { stop_reason: 'end_turn', stop_sequence: null },
          usage: { output_tokens: outputTokens },
        }),
        namedEvent('message_stop', { type: 'message_stop' }),
      ],
      error: () => [namedEvent('error', { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } })],
    };
  },
  serverError: () => ({ type: 'error', error: { type: 'api_error', message: 'Internal server error' } }),
};

/**
 * A local Anthropic Messages API for tests: `POST /v1/messages` with `stream: true` answered with
 * the real event stream (`message_start`, `content_block_start`, `ping`, `content_block_delta`…,
 * `content_block_stop`, `message_delta` with the usage, `message_stop`; `error` events). It
 * refuses what Anthropic refuses: a wrong `x-api-key` (when `apiKey` is set), no
 * `anthropic-version`, no `max_tokens`, a `system` role among the messages.
 */
export class FakeAnthropicServer extends FakeModelServer {
  /** Starts listening on 127.0.0.1 and a free port. */
  static start(options: FakeModelServerOptions = {}): Promise<FakeAnthropicServer> {
    return new FakeAnthropicServer(messagesWire, options).listen();
  }
}

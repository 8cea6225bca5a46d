import {
  FakeModelServer,
  bodyField,
  header,
  type FakeModelServerOptions,
  type FakeRefusal,
  type WireFormat,
} from './fake-model-server.js';

const STREAM_PATH = /^\/v1beta\/models\/([^/:?]+):streamGenerateContent\?(.*)$/;

function googleError(code: number, status: string, message: string): FakeRefusal {
  return { status: code, body: { error: { code, message, status } } };
}

/** Gemini separates its SSE events with CRLF pairs: clients must accept either line ending. */
function data(payload: unknown): string {
  return `data: ${JSON.stringify(payload)}\r\n\r\n`;
}

const geminiWire: WireFormat = {
  basePath: '/v1beta',
  judge(request, apiKey) {
    const route = STREAM_PATH.exec(request.path);
    if (!route) return googleError(404, 'NOT_FOUND', `Requested entity was not found: ${request.path}`);
    if (new URLSearchParams(route[2]).get('alt') !== 'sse') {
      return googleError(400, 'INVALID_ARGUMENT', 'this fake streams only with alt=sse');
    }
    if (apiKey !== undefined) {
      const sent = header(request, 'x-goog-api-key');
      if (sent === undefined) {
        return googleError(
          403,
          'PERMISSION_DENIED',
          "Method doesn't allow unregistered callers (callers without established identity).",
        );
      }
      if (sent !== apiKey)
        return googleError(400, 'INVALID_ARGUMENT', 'API key not valid. Please pass a valid API key.');
    }
    const contents = bodyField(request, 'contents');
    if (!Array.isArray(contents) || contents.length === 0) {
      return googleError(400, 'INVALID_ARGUMENT', '* GenerateContentRequest.contents: contents is not specified');
    }
    return undefined;
  },
  frames(request) {
    const modelVersion = STREAM_PATH.exec(request.path)?.[1] ?? 'x';
    const responseId = `fake${request.remotePort ?? 0}`;
    const candidate = (text: string, finishReason?: string) => ({
      content: { parts: [{ text }], role: 'model' },
      ...(finishReason ? { finishReason } : {}),
      index: 0,
    });
    return {
      start: () => [],
      delta: (text) =>
        data({
          candidates: [candidate(text)],
          usageMetadata: { promptTokenCount: 7, totalTokenCount: 7 },
          modelVersion,
          responseId,
        }),
      finish: ({ inputTokens, outputTokens }) => [
        data({
          candidates: [candidate('', 'STOP')],
          usageMetadata: {
            promptTokenCount: inputTokens,
            candidatesTokenCount: outputTokens,
            totalTokenCount: inputTokens + outputTokens,
          },
          modelVersion,
          responseId,
        }),
      ],
      error: () => [
        data({
          error: { code: 503, message: 'The model is overloaded. Please try again later.', status: 'UNAVAILABLE' },
        }),
      ],
    };
  },
  serverError: () => ({ error: { code: 500, message: 'An internal error has occurred.', status: 'INTERNAL' } }),
};

/**
 * A local Gemini API for tests: `POST /v1beta/models/{model}:streamGenerateContent?alt=sse` answered
 * with the real stream (`data: {GenerateContentResponse}` per chunk, CRLF-separated, the last with
 * `finishReason` and the full `usageMetadata`, no end marker; `{"error": …}` mid-stream). It
 * refuses what Google refuses: no or a wrong `x-goog-api-key` (when `apiKey` is set), no contents.
 */
export class FakeGeminiServer extends FakeModelServer {
  /** Starts listening on 127.0.0.1 and a free port. */
  static start(options: FakeModelServerOptions = {}): Promise<FakeGeminiServer> {
    return new FakeGeminiServer(geminiWire, options).listen();
  }
}

import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { nowMs } from './histogram.js';

/**
 * The `--scenario=ai` model: an OpenAI-compatible Chat Completions server (the same wire format as
 * packages/server/src/adapters/ai/testing/fake-openai-server.ts) run as a child process (forkTs), so its work and
 * timers stay out of the server's and the orchestrator's. Every request streams `max_tokens`
 * tokens at `TOKENS_PER_SECOND`, paced by the clock (token i is written at start + (i + 1) / rate),
 * and records when each token was written (`nowMs()` of this process; the orchestrator measures the
 * offset with pings). A request is identified by its prompt. Tokens are ` t<i>`: the orchestrator
 * counts tokens in a delta by counting spaces.
 */

/** Commands from the orchestrator. */
export type ProviderCommand = { type: 'ping'; id: number } | { type: 'report'; id: number };

/** Replies and announcements to the orchestrator. */
export type ProviderReply =
  | { type: 'ready'; baseUrl: string }
  | { type: 'pong'; id: number; now: number }
  | { type: 'report'; id: number; requests: ProviderRequestLog[] };

/** One request: its prompt, when it arrived and when each token was written (provider clock, ms). */
export interface ProviderRequestLog {
  prompt: string;
  receivedAt: number;
  tokenTimes: number[];
  completed: boolean;
}

/** The pace: 50 tokens/s per generation. */
const TOKENS_PER_SECOND = 50;

function providerToken(index: number): string {
  return ` t${index}`;
}

const logs: ProviderRequestLog[] = [];

function send(reply: ProviderReply): void {
  process.send?.(reply);
}

interface ChatRequest {
  model?: string;
  max_tokens?: number;
  max_completion_tokens?: number;
  messages?: { role?: string; content?: string | { type?: string; text?: string }[] }[];
}

/** The text of the first user message, as a string or as content parts (clients send either). */
function promptOf(body: ChatRequest): string {
  const content = body.messages?.find((message) => message.role === 'user')?.content;
  if (typeof content === 'string') return content;
  return (content ?? []).map((part) => part.text ?? '').join('');
}

function stream(body: ChatRequest, res: ServerResponse) {
  const log: ProviderRequestLog = {
    prompt: promptOf(body),
    receivedAt: nowMs(),
    tokenTimes: [],
    completed: false,
  };
  logs.push(log);
  const tokens = Math.max(1, body.max_completion_tokens ?? body.max_tokens ?? 16);
  const id = `chatcmpl-bench-${logs.length}`;
  const frame = (choices: unknown[], extra: Record<string, unknown> = {}) =>
    `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created: 1_700_000_000, model: body.model ?? 'x', choices, ...extra })}\n\n`;
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  res.write(frame([{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }]));
  const startedAt = nowMs();
  const interval = 1000 / TOKENS_PER_SECOND;
  let index = 0;
  const next = () => {
    if (res.destroyed) return;
    res.write(frame([{ index: 0, delta: { content: providerToken(index) }, finish_reason: null }]));
    log.tokenTimes.push(nowMs());
    index++;
    if (index < tokens) {
      setTimeout(next, Math.max(0, startedAt + (index + 1) * interval - nowMs()));
      return;
    }
    res.write(frame([{ index: 0, delta: {}, finish_reason: 'stop' }]));
    res.write(frame([], { usage: { prompt_tokens: 7, completion_tokens: tokens, total_tokens: 7 + tokens } }));
    res.end('data: [DONE]\n\n');
    log.completed = true;
  };
  setTimeout(next, interval);
}

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    if (!(req.url ?? '').endsWith('/chat/completions')) {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { message: 'no route', type: 'invalid_request_error' } }));
      return;
    }
    try {
      stream(JSON.parse(Buffer.concat(chunks).toString('utf8')) as ChatRequest, res);
    } catch {
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { message: 'bad body', type: 'invalid_request_error' } }));
    }
  });
});

process.on('message', (command: ProviderCommand) => {
  if (command.type === 'ping') send({ type: 'pong', id: command.id, now: nowMs() });
  else send({ type: 'report', id: command.id, requests: logs });
});
// Exit with the orchestrator.
process.on('disconnect', () => process.exit(0));

server.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo;
  send({ type: 'ready', baseUrl: `http://127.0.0.1:${port}/v1` });
});

import { describe, expect, it } from 'vitest';
import { createLogger, redactUrl } from './logger.js';

/** A logger at `trace` whose lines are collected, parsed. */
function collectingLogger(): { logger: ReturnType<typeof createLogger>; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger({
    level: 'trace',
    destination: { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) },
  });
  return { logger, lines };
}

describe('createLogger: credentials never reach a line', () => {
  it('censors credential headers, top-level tokens and tokens of a logged body', () => {
    // `req` goes through the request serializer, which keeps no header at all.
    const { logger, lines } = collectingLogger();
    logger.info(
      {
        req: { headers: { authorization: 'Bearer secret-1', cookie: 'access_token=secret-2', accept: '*/*' } },
        headers: { authorization: 'Bearer secret-3', cookie: 'a=secret-4' },
        accessToken: 'secret-5',
        ticket: 'secret-6',
        body: { accessToken: 'secret-7', ticket: 'secret-8', topic: 'doc:1' },
      },
      'a request',
    );
    const text = JSON.stringify(lines);
    for (let i = 1; i <= 8; i++) expect(text).not.toContain(`secret-${i}`);
    const [line] = lines;
    expect(line).toMatchObject({
      headers: { authorization: '[REDACTED]', cookie: '[REDACTED]' },
      ticket: '[REDACTED]',
      accessToken: '[REDACTED]',
      body: { accessToken: '[REDACTED]', ticket: '[REDACTED]', topic: 'doc:1' },
    });
  });

  it('keeps a child logger’s bindings and every other key as they are', () => {
    const { logger, lines } = collectingLogger();
    logger.child({ reqId: 'req-7' }).warn({ connectionId: 'c-1', topics: ['doc:1'] }, 'stream closed');
    expect(lines[0]).toMatchObject({ reqId: 'req-7', connectionId: 'c-1', topics: ['doc:1'], msg: 'stream closed' });
  });

  it('logs a request URL without its credential query values', () => {
    const { logger, lines } = collectingLogger();
    logger.info({
      req: { method: 'GET', url: '/api/sse/stream?topics=doc%3A1&ticket=t-secret&access_token=a-secret' },
    });
    expect(JSON.stringify(lines)).not.toMatch(/t-secret|a-secret/);
    expect(lines[0]).toMatchObject({
      req: { url: '/api/sse/stream?topics=doc%3A1&ticket=[REDACTED]&access_token=[REDACTED]' },
    });
    expect(redactUrl('/x?token=1&tokens=2')).toBe('/x?token=[REDACTED]&tokens=2');
  });
});

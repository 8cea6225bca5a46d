/**
 * HTTP/1.1 chunked framing for the bench's raw-socket clients (load-generator.ts, storm-client.ts):
 * size line (hex, CRLF), data, CRLF; a zero-size chunk ends the response. Incremental across reads,
 * with the state kept on the caller's stream, so a frame split over two reads is joined.
 */
export interface ChunkedState {
  /** Data bytes of the current chunk still to come. */
  chunkLeft: number;
  /** A size line split across reads. */
  sizeLine: string;
  /** Bytes of the CRLF after a chunk's data still to skip. */
  crlfLeft: number;
}

const LF = 0x0a;

/**
 * Decodes `buffer[offset, length)`: the body text it carries (latin1: the parsers need only the
 * ASCII of ids, event names and send times), and `ended` when the response ended (a zero-size
 * chunk) or `bad_chunk` for a size line that is not hex.
 */
export function decodeChunked(
  state: ChunkedState,
  buffer: Buffer,
  offset: number,
  length: number,
): { body: string; end?: 'ended' | 'bad_chunk' } {
  let body = '';
  while (offset < length) {
    if (state.crlfLeft > 0) {
      state.crlfLeft--;
      offset++;
    } else if (state.chunkLeft > 0) {
      const take = Math.min(state.chunkLeft, length - offset);
      body += buffer.toString('latin1', offset, offset + take);
      state.chunkLeft -= take;
      offset += take;
      if (state.chunkLeft === 0) state.crlfLeft = 2;
    } else {
      const lineEnd = buffer.indexOf(LF, offset);
      if (lineEnd === -1 || lineEnd >= length) {
        state.sizeLine += buffer.toString('latin1', offset, length);
        break;
      }
      const size = Number.parseInt(state.sizeLine + buffer.toString('latin1', offset, lineEnd), 16);
      state.sizeLine = '';
      offset = lineEnd + 1;
      if (!Number.isFinite(size)) return { body, end: 'bad_chunk' };
      if (size === 0) return { body, end: 'ended' };
      state.chunkLeft = size;
    }
  }
  return { body };
}

/** Props of {@link StreamingText}. */
export interface StreamingTextProps {
  text: string;
  isStreaming: boolean;
}

/**
 * Text that is still being written, with a blinking caret while it streams. It is a polite live
 * region that stays `aria-busy` while streaming, so screen readers read the passage once it is
 * finished instead of every word as it arrives.
 */
export function StreamingText({ text, isStreaming }: StreamingTextProps) {
  return (
    <span
      className="streamed"
      data-testid="streamed-text"
      data-streaming={isStreaming}
      aria-live="polite"
      aria-busy={isStreaming}
    >
      {text}
      {isStreaming && <span className="caret" aria-hidden="true" data-testid="typing-caret" />}
    </span>
  );
}

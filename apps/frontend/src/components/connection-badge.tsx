import type { ConnectionReason } from '@infinitescribe/client';
import { useSSEConnection, type SSEConnection } from '@infinitescribe/react';

/** Tone of the badge; shape and text say the same as the colour, for colour-blind readers. */
type Tone = 'ok' | 'busy' | 'warn' | 'down';

interface BadgeText {
  tone: Tone;
  /** Short visible label. */
  label: string;
  /** What it means, for the tooltip and screen readers. */
  detail: string;
  /** What is announced politely on change (no countdown, so it is not read every second). */
  announcement: string;
}

const REASONS: Partial<Record<ConnectionReason, string>> = {
  network_error: 'the network failed',
  server_error: 'the server had an error',
  too_many_connections: 'too many open tabs for this user',
  heartbeat_timeout: 'the stream went silent',
  first_byte_timeout: 'the server did not answer',
  token_error: 'no sign-in token',
  token_refresh: 'refreshing the sign-in',
  auth_expired: 'the sign-in expired',
  transport_closed: 'the stream ended',
  online: 'back online',
  unauthorized: 'the sign-in was refused',
  forbidden: 'access was refused',
  rejected: 'the server refused the stream',
  stream_stalled: 'a proxy buffers the stream',
};

/** The badge's text for a connection snapshot. */
export function describeConnection(connection: SSEConnection): BadgeText {
  const why = REASONS[connection.reason];
  switch (connection.state) {
    case 'open':
      return { tone: 'ok', label: 'Connected', detail: 'Live updates are on.', announcement: 'Connected' };
    case 'connecting':
      return { tone: 'busy', label: 'Connecting…', detail: 'Opening the live stream.', announcement: 'Connecting' };
    case 'reconnecting': {
      const label =
        connection.retryInSeconds !== undefined && connection.retryInSeconds > 0
          ? `Reconnecting in ${connection.retryInSeconds}s`
          : 'Reconnecting…';
      return {
        tone: 'warn',
        label,
        detail: `Connection lost${why ? `: ${why}` : ''}. Retrying automatically.`,
        announcement: 'Connection lost, reconnecting',
      };
    }
    case 'offline':
      return {
        tone: 'down',
        label: 'Offline',
        detail: 'Your device is offline. Updates resume when it is back online.',
        announcement: 'Offline',
      };
    case 'fallback':
      return {
        tone: 'warn',
        label: 'Fallback',
        detail: `Live updates arrive by polling${why ? ` (${why})` : ''}; they may lag a little.`,
        announcement: 'Connected in fallback mode',
      };
    case 'closed':
      return {
        tone: 'down',
        label: connection.reason === 'unauthorized' ? 'Signed out' : 'Disconnected',
        detail: why ? `Stopped: ${why}.` : 'Live updates are off.',
        announcement: 'Disconnected',
      };
  }
}

/** "connected / reconnecting in Ns / offline / fallback", readable at a glance, with a retry button. */
export function ConnectionBadge() {
  const connection = useSSEConnection();
  const text = describeConnection(connection);
  const canRetry =
    connection.state === 'reconnecting' || (connection.state === 'closed' && connection.reason !== 'client_closed');
  return (
    <div className="connection">
      <span
        className={`badge badge-${text.tone}`}
        data-testid="connection-badge"
        data-state={connection.state}
        title={text.detail}
      >
        <span className="badge-dot" aria-hidden="true" />
        {text.label}
        <span className="sr-only">. {text.detail}</span>
      </span>
      <span className="sr-only" role="status">
        {text.announcement}
      </span>
      {canRetry && (
        <button type="button" className="link-button" onClick={connection.reconnect}>
          Retry now
        </button>
      )}
    </div>
  );
}

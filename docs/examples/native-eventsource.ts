/**
 * A native EventSource cannot send an Authorization header, so each connection trades the access
 * token for a one-time ticket. The ticket is spent once used: on an error the browser's own
 * reconnect would present it again and get 401, so this code reconnects itself, with a new ticket
 * and the last id it saw as `lastEventId`.
 */
export function openNotificationStream(
  baseUrl: string,
  getAccessToken: () => Promise<string>,
  onNotification: (title: string) => void,
): { close(): void } {
  let lastEventId = '';
  let source: EventSource | undefined;
  let closed = false;

  async function connect(): Promise<void> {
    const response = await fetch(`${baseUrl}/api/sse/ticket`, {
      method: 'POST',
      headers: { authorization: `Bearer ${await getAccessToken()}` },
    });
    const { ticket } = (await response.json()) as { ticket: string };
    const url = new URL('/api/sse/stream', baseUrl);
    url.searchParams.set('ticket', ticket);
    if (lastEventId) url.searchParams.set('lastEventId', lastEventId);
    if (closed) return;
    source = new EventSource(url);
    source.addEventListener('connection.established', (event) => {
      // A fresh stream says where it starts: keep it, so even the first outage resumes.
      lastEventId ||= (JSON.parse(event.data) as { lastEventId?: string }).lastEventId ?? '';
    });
    source.addEventListener('notification', (event) => {
      lastEventId = event.lastEventId;
      onNotification((JSON.parse(event.data) as { payload: { title: string } }).payload.title);
    });
    source.addEventListener('error', () => {
      source?.close();
      if (!closed) setTimeout(() => void connect().catch(() => undefined), 1000 + Math.random() * 2000);
    });
  }

  void connect();
  return {
    close() {
      closed = true;
      source?.close();
    },
  };
}

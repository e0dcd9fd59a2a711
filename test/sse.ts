/**
 * A text/event-stream reader over fetch for the tests that watch GET /api/v1/stream: one parser
 * instead of a copy per test file. Events are parsed as the stream arrives (`event:` and `data:`
 * lines, a blank line ends an event; several `data:` lines are joined) and pushed with the time
 * they arrived, so a test can poll `events` and measure freshness.
 */
export interface SseEvent<D = Record<string, unknown>> {
  event: string;
  data: D;
  /** Date.now() when the event was parsed. */
  at: number;
}

export interface SseStream<D> {
  events: SseEvent<D>[];
  /** Resolves once the stream answered 200; rejects on another status or a failed fetch. */
  opened: Promise<void>;
  close(): void;
}

export function openSse<D = Record<string, unknown>>(url: string, headers: Record<string, string> = {}): SseStream<D> {
  const events: SseEvent<D>[] = [];
  const ac = new AbortController();
  const opened = (async () => {
    const res = await fetch(url, { signal: ac.signal, headers });
    if (res.status !== 200 || !res.body) throw new Error(`stream ${url} answered ${res.status}`);
    const reader = res.body.getReader();
    const dec = new TextDecoder();
    let buf = '';
    void (async () => {
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) return;
          buf += dec.decode(value, { stream: true });
          let i: number;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, i);
            buf = buf.slice(i + 2);
            let event = 'message';
            let data = '';
            for (const line of block.split('\n')) {
              if (line.startsWith('event: ')) event = line.slice(7);
              else if (line.startsWith('data: ')) data += line.slice(6);
            }
            if (data) events.push({ event, data: JSON.parse(data) as D, at: Date.now() });
          }
        }
      } catch {
        /* aborted by close() */
      }
    })();
  })();
  // A caller that does not await `opened` (it polls `events`) must not get an unhandled rejection.
  opened.catch(() => {});
  return { events, opened, close: () => ac.abort() };
}

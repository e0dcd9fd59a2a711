/**
 * Penumbra instrumentation library: injected into the shadow copy of a web item, it reports
 * how the shadow behaves for the slice of users that runs it. No dependencies; built into one
 * minified IIFE by ../build.ts (budget: 5 KB min+gzip).
 *
 * Reads
 *   window.__PENUMBRA__ = { itemId, version, variant, profileVersion, runtimeConfigUrl,
 *     telemetryUrl, userId?, token?, controlOf?, disabled? } — set by the ingest step before this
 *     script runs. Missing or `disabled` → the library does nothing at all (fetch/XHR stay native).
 *   The assignment token: `token` of the global, else `?penumbra_token=` (what /launch appends),
 *     kept in sessionStorage for the item's other pages. For variant `control`, `controlOf` (the
 *     shadow whose control cohort this is) comes from the global or from the token's claims.
 *   GET runtimeConfigUrl → { enabled, sampleRate, capture: { performance, errors, usage,
 *     requests? }, points: [{ id, selector, event }], endpoints: { name: url },
 *     flushIntervalMs?, maxBatch?, refreshSeconds? }, re-fetched every refreshSeconds (30) so
 *     points, sampling and endpoints change live. A failed fetch keeps the last good config;
 *     with none, nothing is captured or sent (events seen before the first config wait in a
 *     small buffer and are replayed through it).
 * Writes
 *   POST telemetryUrl ← { itemId, version, variant, controlOf?, profileVersion, sessionId, userId,
 *     sentAt, token?, events: [{ id, type, name, ts, value?, attrs? }] } (ARCHITECTURE.md
 *     "Telemetry batch"); Core Web Vitals `lcp`, `inp` (ms) and `cls` as perf events when the page
 *     is hidden or left;
 *     `fetch(keepalive)` every flushIntervalMs (2000) or at maxBatch (50) events,
 *     `navigator.sendBeacon` on pagehide / hidden. attrs values are always strings.
 * Guarantees
 *   - never throws into the host page: every hook runs inside try/catch;
 *   - the wrapped fetch / XMLHttpRequest return exactly what the originals return, and the
 *     originals' exceptions and rejections reach the page untouched;
 *   - its own requests use the original fetch, so they are never captured;
 *   - bounded memory: at most 500 queued events, oldest dropped first, the drop count is sent
 *     as a `session` event named `dropped` (value = count) in the next batch;
 *   - at-least-once-ish delivery: a batch refused with 5xx/429 or a network error is re-queued
 *     with the same event ids (the collector stores an id once) and retried with backoff.
 */

type Attrs = Record<string, string>;
type EventType = 'perf' | 'request' | 'error' | 'usage' | 'session';

interface PenumbraGlobal {
  itemId: string;
  version: string;
  variant: string;
  profileVersion: number;
  runtimeConfigUrl: string;
  telemetryUrl: string;
  userId?: string;
  /** Signed assignment token (else ?penumbra_token=). */
  token?: string;
  /** Variant control: the shadow whose control cohort this is (else the token's `ctl` claim). */
  controlOf?: string;
  disabled?: boolean;
}

interface Point {
  id: string;
  selector: string;
  event: string;
}

interface RuntimeConfig {
  enabled: boolean;
  sampleRate: number;
  capture: { performance?: boolean; errors?: boolean; usage?: boolean; requests?: boolean };
  points: Point[];
  endpoints: Record<string, string>;
  flushIntervalMs: number;
  maxBatch: number;
  refreshSeconds: number;
}

interface TelemetryEvent {
  id: string;
  type: EventType;
  name: string;
  ts: number;
  value?: number;
  attrs?: Attrs;
}

/** Replaced at build time with LIBRARY_VERSION (see ../build.ts). */
declare const __LIB_VERSION__: string;

const MAX_QUEUE = 500;
/** Events observed before the first runtime config arrives (page start-up is busy). */
const MAX_EARLY = 200;
/** Browsers cap the bodies of in-flight keepalive requests at 64 KiB in total. */
const KEEPALIVE_LIMIT = 60000;

// Not `window` directly: in a worker or a non-browser host that reference would itself throw.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const w: any = typeof window === 'object' ? window : {};

try {
  start();
} catch {
  // A broken environment (no DOM APIs, frozen globals) must not break the host page.
}

function start(): void {
  const g: PenumbraGlobal | undefined = w.__PENUMBRA__;
  // `penumbra.lib` marks an instance already running: the script may be injected twice.
  if (!g || g.disabled || !g.runtimeConfigUrl || !g.telemetryUrl || (w.penumbra && w.penumbra.lib)) return;

  const loc = location.href;
  const perfNow = () => performance.now();
  const round = (ms: number) => Math.round(ms * 10) / 10;
  const origFetch: typeof fetch | undefined = w.fetch;
  const XP: XMLHttpRequest | undefined = w.XMLHttpRequest && XMLHttpRequest.prototype;
  const origOpen = XP && XP.open;
  const origSend = XP && XP.send;

  let cfg: RuntimeConfig | null = null;
  let active = false;
  let off = false;
  let hooked = false;
  let started = false;
  let ended = false;
  let inflight = false;
  let queue: TelemetryEvent[] = [];
  let dropped = 0;
  let early: (() => void)[] = [];
  let retryAt = 0;
  let backoff = 0;
  let flushEvery = 0;
  let flushTimer: ReturnType<typeof setInterval> | undefined;
  let refreshTimer: ReturnType<typeof setTimeout> | undefined;
  const bound: Record<string, 1> = {};
  const initAt = Date.now();

  /** Wraps a handler so it is a no-op once disabled and can never throw into the page. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const safe = <A extends any[]>(fn: (...a: A) => void) => (...a: A): void => {
    try {
      if (!off) fn(...a);
    } catch {
      // swallowed on purpose: instrumentation must never affect the host page
    }
  };

  const sessionId = stored('sessionStorage', 'penumbra.sid', () => 's-' + uuid());
  // The resolver's user id wins, so telemetry joins the assignment: given by the page global, or
  // by /launch as ?penumbra_uid= (then remembered for the item's other pages).
  const launched = fromQuery('penumbra_uid');
  if (launched) remember('localStorage', 'penumbra.uid', launched);
  const userId = g.userId ? String(g.userId) : launched || stored('localStorage', 'penumbra.uid', () => 'u-' + uuid());
  // The assignment token makes the telemetry attributable (the collector verifies it); per tab,
  // like the session: /launch hands it to the first page, the item's other pages find it stored.
  const tokenKey = 'penumbra.token.' + g.itemId;
  const launchedToken = fromQuery('penumbra_token', 2048);
  if (launchedToken) remember('sessionStorage', tokenKey, launchedToken);
  const token = g.token || launchedToken || stored('sessionStorage', tokenKey, () => '') || undefined;
  const controlOf = g.variant === 'control' ? g.controlOf || claim(token, 'ctl') : undefined;
  const configUrl = g.runtimeConfigUrl + (controlOf ? '&controlOf=' + encodeURIComponent(controlOf) : '');
  // One uniform draw per session and item; the session is sampled while draw < sampleRate, so
  // a live change of the rate re-decides consistently (lowering it only ever drops sessions).
  let draw = parseFloat(stored('sessionStorage', 'penumbra.draw.' + g.itemId, () => String(Math.random())));
  if (!(draw >= 0 && draw < 1)) draw = Math.random();

  // ---- events and batches ----

  function captures(type: EventType): boolean | undefined {
    const c = cfg!.capture;
    if (type === 'session') return true;
    if (type === 'perf') return c.performance;
    if (type === 'request') return c.requests ?? c.performance;
    return type === 'error' ? c.errors : c.usage;
  }

  function event(type: EventType, name: string, value?: number, attrs?: Attrs, ts = Date.now()): TelemetryEvent {
    const e: TelemetryEvent = { id: uuid(), type, name, ts };
    if (value !== undefined) e.value = value;
    if (attrs) e.attrs = attrs;
    return e;
  }

  function emit(type: EventType, name: string, value?: number, attrs?: Attrs, ts = Date.now()): void {
    if (off) return;
    if (!cfg) {
      if (early.length < MAX_EARLY) early.push(() => emit(type, name, value, attrs, ts));
      else dropped++;
      return;
    }
    if (!active || !captures(type)) return;
    if (queue.length >= MAX_QUEUE) {
      queue.shift();
      dropped++;
    }
    queue.push(event(type, name, value, attrs, ts));
    if (queue.length >= cfg.maxBatch) flush();
  }

  function flush(beacon?: boolean): void {
    if (off || !active || !queue.length) return;
    if (!beacon && (inflight || Date.now() < retryAt)) return;
    while (queue.length) {
      const events = queue.splice(0, cfg!.maxBatch);
      if (dropped) {
        events.unshift(event('session', 'dropped', dropped, { dropped: String(dropped) }));
        dropped = 0;
      }
      const body = JSON.stringify({
        itemId: g!.itemId, version: g!.version, variant: g!.variant, controlOf, profileVersion: g!.profileVersion,
        sessionId, userId, sentAt: Date.now(), token, events,
      });
      if (!beacon) return post(body, events);
      let queued = false;
      try {
        // text/plain is CORS-safelisted: no preflight, which a page that is going away (and a
        // collector on another origin than the item, the normal case) would not get to finish.
        // The collector parses the body as JSON whatever its type.
        queued = navigator.sendBeacon(g!.telemetryUrl, new Blob([body], { type: 'text/plain;charset=UTF-8' }));
      } catch {
        // a refused beacon falls back below
      }
      if (!queued) post(body, events, true);
    }
  }

  /** POSTs one batch with the original fetch; `last` = page is going away, no retry. */
  function post(body: string, events: TelemetryEvent[], last?: boolean): void {
    inflight = !last;
    const fail = () => {
      inflight = false;
      if (last || off) return;
      // Same ids on retry: the collector stores each event once.
      queue = events.concat(queue);
      while (queue.length > MAX_QUEUE) {
        queue.shift();
        dropped++;
      }
      backoff = Math.min(backoff ? backoff * 2 : 2000, 60000);
      retryAt = Date.now() + backoff;
    };
    let p: Promise<Response>;
    try {
      p = origFetch!.call(w, g!.telemetryUrl, {
        method: 'POST',
        // The last flush must not wait for a preflight (see the beacon above).
        headers: { 'content-type': last ? 'text/plain;charset=UTF-8' : 'application/json' },
        body,
        keepalive: body.length < KEEPALIVE_LIMIT,
        credentials: 'omit',
      });
    } catch (e) {
      p = Promise.reject(e);
    }
    p.then((r) => {
      // 4xx other than 429 will not get better by retrying: drop the batch.
      if (r.status >= 500 || r.status === 429) return fail();
      inflight = false;
      backoff = 0;
      if (cfg && queue.length >= cfg.maxBatch) flush();
    }, fail).catch(() => undefined);
  }

  // ---- runtime config ----

  function parse(c: unknown): RuntimeConfig {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const o = c as any;
    if (!o || typeof o !== 'object') throw new Error('runtime config: not an object');
    const num = (v: unknown, d: number, min: number) => (typeof v === 'number' && v >= min ? v : d);
    return {
      enabled: o.enabled === true,
      sampleRate: num(o.sampleRate, 1, 0),
      capture: o.capture && typeof o.capture === 'object' ? o.capture : {},
      points: Array.isArray(o.points)
        ? o.points.filter((p: Point) => p && typeof p.selector === 'string' && typeof p.event === 'string' && p.id != null)
        : [],
      endpoints: o.endpoints && typeof o.endpoints === 'object' ? o.endpoints : {},
      flushIntervalMs: num(o.flushIntervalMs, 2000, 100),
      maxBatch: Math.floor(num(o.maxBatch, 50, 1)),
      refreshSeconds: num(o.refreshSeconds, 30, 1),
    };
  }

  function apply(next: RuntimeConfig): void {
    cfg = next;
    active = next.enabled && draw < next.sampleRate;
    hook(active && !!captures('request'));
    if (!active) {
      // Sampled out (or switched off) from now on: forget what is pending.
      queue = [];
      dropped = 0;
      early = [];
      return;
    }
    if (!started) {
      started = true;
      emit('session', 'start', undefined, { lib: __LIB_VERSION__ }, initAt);
    }
    const pending = early;
    early = [];
    pending.forEach((f) => f());
    for (const p of next.points) {
      if (!bound[p.event]) {
        bound[p.event] = 1;
        document.addEventListener(p.event, onPoint, { capture: true, passive: true });
      }
    }
    if (flushEvery !== next.flushIntervalMs) {
      flushEvery = next.flushIntervalMs;
      clearInterval(flushTimer);
      flushTimer = setInterval(safe(() => flush()), flushEvery);
    }
  }

  function load(): void {
    let p: Promise<Response>;
    try {
      p = origFetch!.call(w, configUrl, { credentials: 'omit', cache: 'no-store' });
    } catch (e) {
      p = Promise.reject(e);
    }
    p.then((r) => {
      if (!r.ok) throw new Error('runtime config: HTTP ' + r.status);
      return r.json();
    })
      .then((c) => {
        if (!off) apply(parse(c));
      })
      .catch(() => undefined) // keep the last good config (or stay idle without one)
      .then(() => {
        if (!off) refreshTimer = setTimeout(load, (cfg ? cfg.refreshSeconds : 30) * 1000);
      });
  }

  // ---- usage: configured points (delegated on document) and the track() API ----

  // Delegation on `document` in the capture phase: points added by a later config apply to
  // existing elements without rebinding, and a page's stopPropagation cannot hide them.
  const onPoint = safe((e: Event) => {
    const t = e.target as Node | null;
    const el = t && (t.nodeType === 1 ? (t as Element) : t.parentElement);
    if (!el || !cfg) return;
    for (const p of cfg.points) {
      if (p.event !== e.type) continue;
      try {
        if (el.closest(p.selector)) emit('usage', String(p.id), undefined, { selector: p.selector });
      } catch {
        // an invalid selector in the config must not stop the other points
      }
    }
  });

  function strAttrs(a: unknown): Attrs | undefined {
    if (!a || typeof a !== 'object') return undefined;
    const out: Attrs = {};
    for (const k of Object.keys(a).slice(0, 20)) out[k] = String((a as Record<string, unknown>)[k]).slice(0, 500);
    return out;
  }

  // ---- requests: fetch and XMLHttpRequest to the shadow's endpoints ----

  function requestDone(url: string, method: string, status: number, latency: number, ts: number): void {
    if (!cfg) {
      if (early.length < MAX_EARLY) early.push(() => requestDone(url, method, status, latency, ts));
      else dropped++;
      return;
    }
    const u = new URL(url, loc);
    if (u.href.indexOf(new URL(g!.telemetryUrl, loc).href) === 0) return;
    for (const name of Object.keys(cfg.endpoints)) {
      const base = new URL(cfg.endpoints[name], loc);
      const bp = base.pathname.replace(/\/$/, '');
      if (u.origin !== base.origin || !(u.pathname === bp || u.pathname.indexOf(bp + '/') === 0)) continue;
      const attrs = { status: String(status), path: u.pathname, method: method.toUpperCase() };
      emit('request', name, round(latency), attrs, ts);
      // Failed = no response at all (network error, abort, CORS) or a server error; 4xx are
      // answers the page asked for (auth, validation) and stay plain request events.
      if (status === 0 || status >= 500) emit('error', 'request failed: ' + name, undefined, attrs, ts);
      return;
    }
  }

  const wrappedFetch = function (this: unknown, input: RequestInfo | URL, init?: RequestInit) {
    let url: string | undefined;
    let method = 'GET';
    const t0 = perfNow();
    try {
      if (hooked && !off) {
        // eslint-disable-next-line @typescript-eslint/no-explicit-any
        const i = input as any;
        url = typeof i === 'string' ? i : i && (i.href || i.url);
        method = (init && init.method) || (i && i.method) || method;
      }
    } catch {
      url = undefined;
    }
    // eslint-disable-next-line prefer-rest-params, @typescript-eslint/no-explicit-any
    const p: Promise<Response> = origFetch!.apply(this, arguments as any);
    if (url) {
      const u = url;
      try {
        // A derived promise: the page's own promise `p` is returned untouched.
        p.then(
          safe((r: Response) => requestDone(u, method, r.status, perfNow() - t0, Date.now())),
          safe(() => requestDone(u, method, 0, perfNow() - t0, Date.now())),
        );
      } catch {
        // not a thenable (an odd polyfill): nothing to observe
      }
    }
    return p;
  };

  const xhrInfo = new WeakMap<XMLHttpRequest, { m: string; u: string; t: number }>();
  const xhrSeen = new WeakSet<XMLHttpRequest>();
  const wrappedOpen = function (this: XMLHttpRequest, method: string, url: string | URL) {
    try {
      xhrInfo.set(this, { m: String(method), u: String(url), t: 0 });
    } catch {
      // keep going: the request itself must still open
    }
    // eslint-disable-next-line prefer-rest-params, @typescript-eslint/no-explicit-any
    return origOpen!.apply(this, arguments as any);
  };
  const wrappedSend = function (this: XMLHttpRequest) {
    try {
      const i = xhrInfo.get(this);
      if (i && hooked && !off) {
        i.t = perfNow();
        if (!xhrSeen.has(this)) {
          // One listener per XHR object, even when the page reuses it for several requests.
          xhrSeen.add(this);
          // eslint-disable-next-line @typescript-eslint/no-this-alias -- the loadend closure must see this XHR, not its own `this`
          const x = this;
          x.addEventListener('loadend', safe(() => {
            const c = xhrInfo.get(x);
            if (c && c.t) requestDone(c.u, c.m, x.status, perfNow() - c.t, Date.now());
            if (c) c.t = 0;
          }));
        }
      }
    } catch {
      // never block the page's request
    }
    // eslint-disable-next-line prefer-rest-params, @typescript-eslint/no-explicit-any
    return origSend!.apply(this, arguments as any);
  };

  /** Installs or removes the wrappers; a wrapper someone else wrapped later stays, inert. */
  function hook(on: boolean): void {
    if (on === hooked) return;
    hooked = on;
    if (on) {
      if (origFetch) w.fetch = wrappedFetch;
      if (XP) {
        XP.open = wrappedOpen as typeof XP.open;
        XP.send = wrappedSend;
      }
    } else {
      if (w.fetch === wrappedFetch) w.fetch = origFetch;
      if (XP && XP.open === wrappedOpen) XP.open = origOpen!;
      if (XP && XP.send === wrappedSend) XP.send = origSend!;
    }
  }

  // ---- errors ----

  function error(name: string, stack: unknown, attrs: Attrs): void {
    if (stack) attrs.stack = String(stack).slice(0, 1000);
    emit('error', name.trim().slice(0, 200) || 'error', undefined, attrs);
  }

  addEventListener('error', safe((e: ErrorEvent) => {
    // Resource load errors (img, script) are plain Events and do not bubble to window.
    if (!(e instanceof ErrorEvent)) return;
    const a: Attrs = { kind: 'error' };
    if (e.filename) a.source = e.filename + ':' + e.lineno + ':' + e.colno;
    error(e.message || String(e.error), e.error && e.error.stack, a);
  }));

  addEventListener('unhandledrejection', safe((e: PromiseRejectionEvent) => {
    const r = e.reason;
    const msg = r && r.message !== undefined ? (r.name || 'Error') + ': ' + r.message : String(r);
    error('Uncaught (in promise) ' + msg, r && r.stack, { kind: 'unhandledrejection' });
  }));

  // ---- performance ----

  const navTimings = safe(() => {
    const n = performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming | undefined;
    if (!n) return;
    // Relative to navigation start (startTime 0), in ms.
    emit('perf', 'ttfb', round(n.responseStart));
    emit('perf', 'domContentLoaded', round(n.domContentLoadedEventEnd));
    emit('perf', 'load', round(n.loadEventEnd));
  });
  // loadEventEnd is only set after the load handlers have run: read it one task later.
  if (document.readyState === 'complete') setTimeout(navTimings, 0);
  else addEventListener('load', () => setTimeout(navTimings, 0));
  try {
    new PerformanceObserver(safe((list: PerformanceObserverEntryList) => {
      for (const p of list.getEntriesByName('first-contentful-paint')) emit('perf', p.name, round(p.startTime));
    })).observe({ type: 'paint', buffered: true });
  } catch {
    // no paint timing in this browser
  }

  // ---- Core Web Vitals (web.dev definitions), reported when the page is hidden or left ----

  // LCP: the latest largest-contentful-paint candidate, until the user first interacts (later
  // candidates are caused by the interaction, not by loading).
  let lcp = 0;
  let interacted = false;
  // CLS: layout shifts without recent input, grouped in session windows (gap < 1 s, window
  // < 5 s); the largest window's sum.
  let cls = 0;
  let win = 0;
  let winFirst = 0;
  let winLast = 0;
  let hasCls = false;
  // INP: per interaction (interactionId) its longest event duration; INP is the worst, or for
  // many interactions roughly the 98th percentile: the n/50-th longest (the 10 longest are kept).
  const longest: number[] = [];
  const seenIds: Record<number, number> = {};
  let interactions = 0;
  const reported: Record<string, number> = {};
  // Observers are kept so that leaving the page can take the entries queued but not yet delivered
  // (delivery waits for an idle task; a click just before navigating would otherwise be lost).
  const observers: Array<() => void> = [];
  const observe = (type: string, fn: (e: PerformanceEntry & Record<string, number>) => void, extra?: object): void => {
    try {
      const each = (entries: PerformanceEntry[]) => entries.forEach(fn as (e: PerformanceEntry) => void);
      const po = new PerformanceObserver(safe((list: PerformanceObserverEntryList) => each(list.getEntries())));
      po.observe({ type, buffered: true, ...extra });
      observers.push(() => each(po.takeRecords()));
    } catch {
      // entry type not supported by this browser: that vital is not reported
    }
  };
  observe('largest-contentful-paint', (e) => {
    if (!interacted) lcp = e.startTime;
  });
  ['keydown', 'pointerdown'].forEach((t) => addEventListener(t, () => (interacted = true), { once: true, capture: true, passive: true }));
  hasCls = !!(w.PerformanceObserver && (PerformanceObserver.supportedEntryTypes || []).indexOf('layout-shift') >= 0);
  observe('layout-shift', (e) => {
    if (e.hadRecentInput) return;
    if (win && e.startTime - winLast < 1000 && e.startTime - winFirst < 5000) win += e.value;
    else {
      win = e.value;
      winFirst = e.startTime;
    }
    winLast = e.startTime;
    if (win > cls) cls = win;
  });
  observe('event', (e) => {
    const id = e.interactionId;
    if (!id) return;
    const d = e.duration;
    const old = seenIds[id];
    if (old === undefined) interactions++;
    else if (old >= d) return;
    else if (longest.indexOf(old) >= 0) longest.splice(longest.indexOf(old), 1);
    seenIds[id] = d;
    longest.push(d);
    longest.sort((a, b) => b - a).splice(10);
  }, { durationThreshold: 16 });
  const vital = (name: string, v: number) => {
    // Each vital once per value: a tab hidden, shown and hidden again reports only changes.
    if (reported[name] !== v) {
      reported[name] = v;
      emit('perf', name, v);
    }
  };
  const vitals = () => {
    observers.forEach((take) => take());
    if (lcp) vital('lcp', round(lcp));
    if (interactions) vital('inp', round(longest[Math.min(Math.floor(interactions / 50), longest.length - 1)]));
    if (hasCls) vital('cls', Math.round(cls * 10000) / 10000);
  };

  // ---- session end: last flush through sendBeacon ----

  const leave = safe(() => {
    vitals();
    if (!ended) {
      // `end` once per page load, even when the tab is hidden and shown again.
      ended = true;
      emit('session', 'end', Date.now() - initAt);
    }
    flush(true);
  });
  addEventListener('pagehide', leave);
  document.addEventListener('visibilitychange', safe(() => {
    if (document.visibilityState === 'hidden') leave();
  }));

  // ---- public API ----

  w.penumbra = {
    lib: __LIB_VERSION__,
    sessionId,
    /** Named hook for the item's own code: a `usage` event. */
    track: safe((name: unknown, attrs?: unknown) => emit('usage', String(name).slice(0, 200), undefined, strAttrs(attrs))),
    flush: safe(() => flush()),
    /** Turns the library off for this page: no more capture or sends, wrappers removed. */
    disable: safe(() => {
      hook(false);
      off = true;
      queue = [];
      early = [];
      clearInterval(flushTimer);
      clearTimeout(refreshTimer);
      for (const t of Object.keys(bound)) document.removeEventListener(t, onPoint, true);
    }),
  };

  hook(true);
  load();
}

function fromQuery(name: string, max = 256): string | null {
  try {
    const v = new URLSearchParams(w.location.search).get(name);
    return v && v.length <= max ? v : null;
  } catch {
    return null;
  }
}

/** A claim of the token's payload (base64url JSON), unverified — only to know what to ask for. */
function claim(token: string | undefined, name: string): string | undefined {
  try {
    const v = JSON.parse(atob(token!.split('.')[1].replace(/-/g, '+').replace(/_/g, '/')))[name];
    return typeof v === 'string' ? v : undefined;
  } catch {
    return undefined;
  }
}

function remember(kind: 'localStorage' | 'sessionStorage', key: string, value: string): void {
  try {
    w[kind].setItem(key, value);
  } catch {
    // storage unavailable: the value still applies to this page
  }
}

function stored(kind: 'localStorage' | 'sessionStorage', key: string, make: () => string): string {
  try {
    const s: Storage = w[kind];
    let v = s.getItem(key);
    if (!v) {
      v = make();
      s.setItem(key, v);
    }
    return v;
  } catch {
    // storage may be disabled or full (private mode, sandboxed iframe): per-page value instead
    return make();
  }
}

function uuid(): string {
  try {
    return crypto.randomUUID();
  } catch {
    // randomUUID needs a secure context; build a v4 UUID by hand
  }
  const b = new Uint8Array(16);
  try {
    crypto.getRandomValues(b);
  } catch {
    for (let i = 0; i < 16; i++) b[i] = (Math.random() * 256) | 0;
  }
  b[6] = (b[6] & 15) | 64;
  b[8] = (b[8] & 63) | 128;
  let s = '';
  for (let i = 0; i < 16; i++) s += (i === 4 || i === 6 || i === 8 || i === 10 ? '-' : '') + (b[i] + 256).toString(16).slice(1);
  return s;
}

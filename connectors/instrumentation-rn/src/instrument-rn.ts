/**
 * Penumbra instrumentation, React Native flavour: prepended to the JS bundle of a shadow update
 * (pipeline/mobile/rn-shadow.ts), it runs before anything of the bundle — before Metro's module
 * system, React Native's InitializeCore and the app. No dependencies; no classes, async
 * functions or newer syntax, so Hermes (old and new) and JavaScriptCore run it as is.
 *
 * Reads
 *   globalThis.__PENUMBRA__ = { itemId, version, variant, profileVersion, runtimeConfigUrl,
 *     telemetryUrl, platform } — written by the ingest step in front of this library;
 *   the Expo manifest the app runs (its `extra.penumbra`: userId, token, controlOf), from
 *     globalThis.__PENUMBRA_EXPO__ (an app may set it) or expo-updates' native module
 *     (globalThis.expo.modules.ExpoUpdates.manifest / manifestString);
 *   GET runtimeConfigUrl → { enabled, sampleRate, capture, endpoints, flushIntervalMs, maxBatch,
 *     refreshSeconds } (the web library's runtime config), refreshed every refreshSeconds.
 * Hooks (each installed when React Native defines what it hooks, see README.md)
 *   errors        ErrorUtils' global handler (wrapped, then the app's own handler runs);
 *   requests      XMLHttpRequest.prototype.open/send — React Native's fetch is built on it, so
 *                 fetch and XHR calls to declared endpoints are both timed, once;
 *   app state     RCTDeviceEventEmitter `appStateDidChange` (bridgeless and bridge): `background`
 *                 ends the session (and flushes), `active` afterwards starts a new one;
 *   usage         globalThis.penumbra.track(name, attrs?).
 * Writes
 *   POST telemetryUrl ← ARCHITECTURE.md "Telemetry batch" plus `token` (and `controlOf`), with
 *   the original XMLHttpRequest, so its own requests are never captured. 5xx/429/network errors
 *   re-queue the batch with the same event ids (backoff 2 s → 60 s); other 4xx drop it.
 * Guarantees
 *   never throws into the app (every hook in try/catch); bounded memory (500 queued events,
 *   oldest dropped and counted); inert without __PENUMBRA__ or with `disabled`.
 */

type Attrs = Record<string, string>;
type Fn = (...args: any[]) => any; // eslint-disable-line @typescript-eslint/no-explicit-any
type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

declare const __LIB_VERSION__: string;

interface TelemetryEvent {
  id: string;
  type: 'perf' | 'request' | 'error' | 'usage' | 'session';
  name: string;
  ts: number;
  value?: number;
  attrs?: Attrs;
}

(function () {
  const g: Obj = typeof globalThis !== 'undefined' ? globalThis : (Function('return this')() as Obj);
  const P: Obj | undefined = g.__PENUMBRA__;
  if (!P || !P.telemetryUrl || !P.runtimeConfigUrl || P.disabled || g.penumbra) return;

  const MAX_QUEUE = 500;
  const MAX_EARLY = 200;
  const now = (): number => Date.now();
  const safe = (f: Fn): Fn =>
    function (this: unknown, ...args: unknown[]) {
      try {
        return f.apply(this, args);
      } catch (e) {
        return undefined;
      }
    };

  function uuid(): string {
    const b: number[] = [];
    const c = g.crypto;
    if (c && typeof c.getRandomValues === 'function') {
      const a = new Uint8Array(16);
      c.getRandomValues(a);
      for (let i = 0; i < 16; i++) b.push(a[i]);
    } else for (let i = 0; i < 16; i++) b.push(Math.floor(Math.random() * 256));
    b[6] = (b[6] & 15) | 64;
    b[8] = (b[8] & 63) | 128;
    let h = '';
    for (let i = 0; i < 16; i++) h += (b[i] + 256).toString(16).slice(1) + (i === 3 || i === 5 || i === 7 || i === 9 ? '-' : '');
    return h;
  }

  /** `extra.penumbra` of the Expo manifest this app runs (per-device: user id and token). */
  function assignment(): Obj {
    try {
      let m: Obj | string | undefined = g.__PENUMBRA_EXPO__;
      const mod = g.expo && g.expo.modules && g.expo.modules.ExpoUpdates;
      if (!m && mod) m = mod.manifest || mod.manifestString;
      if (typeof m === 'string') m = JSON.parse(m) as Obj;
      const extra = m && (m.extra || (m.manifest && m.manifest.extra));
      return (extra && extra.penumbra) || {};
    } catch (e) {
      return {};
    }
  }

  const A = assignment();
  // The token the manifest carried; refreshed from the update URL (refresh below) before it expires.
  let token: string | undefined = typeof A.token === 'string' ? A.token : undefined;
  let tokenExp: number = typeof A.tokenExpiresAt === 'number' ? A.tokenExpiresAt : 0;
  let refreshing = false;
  let refreshedAt = 0;

  /**
   * An app runs an update for days, longer than a token lives: ask the update URL again (JSON
   * structure, same headers as expo-updates sent) for a fresh token of the same variant. That
   * request goes through the resolver like any update check. If the resolver now assigns
   * another variant, the old token stays: the app switches at its next launch, and telemetry
   * sent meanwhile is flagged unverified once the old token expires.
   */
  function refreshToken(): void {
    if (refreshing || !A.refreshUrl || !tokenExp || tokenExp - now() > 3600e3 || now() - refreshedAt < 60e3) return;
    refreshing = true;
    refreshedAt = now();
    request('GET', String(A.refreshUrl), null, (status, text) => {
      refreshing = false;
      if (status !== 200) return;
      try {
        const p = (JSON.parse(text) as Obj).extra.penumbra as Obj;
        if (p.variant === P!.variant && typeof p.token === 'string') {
          token = p.token;
          tokenExp = Number(p.tokenExpiresAt) || 0;
        }
      } catch (e) {
        /* keep the old token */
      }
    }, A.refreshHeaders || {});
  }
  const userId: string = typeof A.userId === 'string' ? A.userId : 'anon-' + uuid();
  let sessionId = 's-' + uuid();
  let sessionStart = now();
  let inBackground = false;
  let cfg: Obj | null = null;
  const draw = Math.random();
  let queue: TelemetryEvent[] = [];
  let early: TelemetryEvent[] = [];
  let dropped = 0;
  let disabled = false;
  let backoff = 0;
  let timer: unknown = null;
  let sending = false;
  let XHR: Fn | null = null;
  let openOrig: Fn | null = null;
  let sendOrig: Fn | null = null;

  const sampled = (): boolean => !!cfg && cfg.enabled === true && draw < (typeof cfg.sampleRate === 'number' ? cfg.sampleRate : 1);
  const capture = (k: string): boolean => {
    const c = (cfg && cfg.capture) || {};
    if (k === 'requests' && c.requests === undefined) return c.performance !== false;
    return c[k] !== false;
  };

  function add(type: TelemetryEvent['type'], name: string, value?: number, attrs?: Attrs): void {
    if (disabled) return;
    const e: TelemetryEvent = { id: uuid(), type, name: String(name).slice(0, 200), ts: now() };
    if (value !== undefined && isFinite(value)) e.value = value;
    if (attrs) e.attrs = attrs;
    (e as Obj)._s = sessionId; // the session it belongs to (not sent: batches are per session)
    if (!cfg) {
      if (early.length < MAX_EARLY) early.push(e);
      return;
    }
    if (!sampled()) return;
    if (type === 'error' && !capture('errors')) return;
    if (type === 'usage' && !capture('usage')) return;
    if (type === 'request' && !capture('requests')) return;
    queue.push(e);
    if (queue.length > MAX_QUEUE) {
      dropped += queue.length - MAX_QUEUE;
      queue = queue.slice(queue.length - MAX_QUEUE);
    }
    if (queue.length >= ((cfg && cfg.maxBatch) || 50)) flush();
  }

  /** Plain request through the original XHR (never captured). */
  function request(method: string, url: string, body: string | null, done: (status: number, text: string) => void, headers?: Obj): void {
    if (!XHR || !openOrig || !sendOrig) return done(0, '');
    const x: Obj = new (XHR as unknown as new () => Obj)();
    x.__penumbraOwn = true;
    openOrig.call(x, method, url, true);
    if (body !== null) x.setRequestHeader('content-type', 'application/json');
    if (headers) for (const k in headers) x.setRequestHeader(k, String(headers[k]));
    x.onreadystatechange = safe(() => {
      if (x.readyState === 4) done(x.status, x.responseText || '');
    });
    sendOrig.call(x, body);
  }

  function schedule(ms: number): void {
    if (timer !== null || typeof g.setTimeout !== 'function') return;
    timer = g.setTimeout(
      safe(() => {
        timer = null;
        flush();
        schedule(backoff || (cfg && cfg.flushIntervalMs) || 2000);
      }),
      ms,
    );
  }

  function flush(): void {
    if (disabled || sending || !XHR || !cfg || !sampled()) return;
    if (dropped > 0) {
      queue.unshift({ id: uuid(), type: 'session', name: 'dropped', ts: now(), value: dropped, attrs: { dropped: String(dropped) } });
      dropped = 0;
    }
    if (queue.length === 0) return;
    const n = (cfg && cfg.maxBatch) || 50;
    const sid: string = (queue[0] as Obj)._s || sessionId;
    let k = 0;
    while (k < queue.length && k < n && ((queue[k] as Obj)._s || sessionId) === sid) k++;
    const batch = queue.slice(0, k);
    queue = queue.slice(k);
    refreshToken();
    const body: Obj = {
      itemId: P!.itemId, version: P!.version, variant: P!.variant, profileVersion: P!.profileVersion,
      sessionId: sid, userId, sentAt: now(), events: batch,
    };
    // The assignment token proves the resolver put this device in this variant (pipeline/assignment-token).
    if (token !== undefined) body.token = token;
    if (typeof A.controlOf === 'string') body.controlOf = A.controlOf;
    sending = true;
    request('POST', P!.telemetryUrl, JSON.stringify(body, (key, v) => (key === '_s' ? undefined : v)), (status) => {
      sending = false;
      if (status === 0 || status === 429 || status >= 500) {
        queue = batch.concat(queue).slice(0, MAX_QUEUE);
        backoff = Math.min(backoff ? backoff * 2 : 2000, 60000);
      } else {
        backoff = 0;
        if (queue.length > 0) flush();
      }
    });
  }

  function applyConfig(text: string): void {
    let c: Obj;
    try {
      c = JSON.parse(text) as Obj;
    } catch (e) {
      return;
    }
    if (!c || typeof c !== 'object') return;
    const first = !cfg;
    cfg = c;
    if (first) {
      const pending = early;
      early = [];
      for (let i = 0; i < pending.length; i++) {
        const e = pending[i];
        add(e.type, e.name, e.value, e.attrs);
      }
    }
    flush();
  }

  function refreshConfig(): void {
    // A control session gets its shadow's instrumentation (runtime-config `controlOf`, issue 11).
    const url = String(P!.runtimeConfigUrl) + (typeof A.controlOf === 'string' ? '&controlOf=' + encodeURIComponent(A.controlOf) : '');
    request('GET', url, null, (status, text) => {
      if (status >= 200 && status < 300) applyConfig(text);
      const s = (cfg && cfg.refreshSeconds) || 30;
      if (typeof g.setTimeout === 'function') g.setTimeout(safe(refreshConfig), Math.max(1, s) * 1000);
    });
  }

  /** Endpoint key and path of a URL under a declared endpoint, or null. */
  function endpointOf(url: string): [string, string] | null {
    const eps = (cfg && cfg.endpoints) || {};
    for (const k in eps) {
      const base = String(eps[k]).replace(/\/+$/, '');
      if (url === base || url.indexOf(base + '/') === 0 || url.indexOf(base + '?') === 0) {
        const rest = url.slice(base.length);
        const m = /^https?:\/\/[^/]+(\/[^?#]*)?/.exec(base);
        return [k, ((m && m[1]) || '') + (rest.split('?')[0] || '') || '/'];
      }
    }
    return null;
  }

  function hookXhr(): boolean {
    if (XHR) return true;
    const X = g.XMLHttpRequest;
    if (typeof X !== 'function' || !X.prototype) return false;
    XHR = X;
    const proto = X.prototype;
    openOrig = proto.open;
    sendOrig = proto.send;
    proto.open = function (this: Obj, ...args: unknown[]) {
      try {
        this.__penumbra = { m: String(args[0] || 'GET').toUpperCase(), u: String(args[1]) };
      } catch (e) {
        /* keep going */
      }
      return openOrig!.apply(this, args);
    };
    proto.send = function (this: Obj, ...args: unknown[]) {
      // eslint-disable-next-line @typescript-eslint/no-this-alias -- the request object is read when it completes
      const self = this;
      const info = self.__penumbra;
      if (info && !self.__penumbraOwn && !disabled) {
        const t0 = now();
        const onDone = safe(() => {
          if (self.readyState !== 4 || info.done) return;
          info.done = true;
          const ep = endpointOf(info.u);
          if (!ep) return;
          const status = Number(self.status) || 0;
          const attrs: Attrs = { status: String(status), path: ep[1], method: info.m };
          add('request', ep[0], now() - t0, attrs);
          if (status === 0 || status >= 500) add('error', 'request failed: ' + ep[0], undefined, attrs);
        });
        try {
          if (typeof self.addEventListener === 'function') self.addEventListener('readystatechange', onDone);
          else {
            const prev = self.onreadystatechange;
            self.onreadystatechange = function (this: unknown, ...a: unknown[]) {
              onDone();
              if (typeof prev === 'function') return prev.apply(this, a);
            };
          }
        } catch (e) {
          /* capture is best effort */
        }
      }
      return sendOrig!.apply(this, args);
    };
    return true;
  }

  function reportError(err: unknown, fatal: boolean): void {
    const e = err as Obj;
    const msg = e && e.message ? (e.name ? e.name + ': ' : '') + e.message : String(err);
    const attrs: Attrs = { kind: fatal ? 'fatal' : 'error' };
    if (e && typeof e.stack === 'string') attrs.stack = e.stack.slice(0, 1000);
    add('error', msg, undefined, attrs);
    if (fatal) flush();
  }

  function wrapHandler(h: Fn | undefined): Fn {
    if (h && (h as Obj).__penumbra) return h;
    const w = function (this: unknown, ...args: unknown[]) {
      try {
        reportError(args[0], !!args[1]);
      } catch (e) {
        /* never in the app's way */
      }
      if (typeof h === 'function') return h.apply(this, args);
    };
    (w as Obj).__penumbra = true;
    return w;
  }

  function hookErrorUtils(eu: Obj | undefined): void {
    if (!eu || eu.__penumbra || typeof eu.setGlobalHandler !== 'function') return;
    eu.__penumbra = true;
    const set = eu.setGlobalHandler;
    eu.setGlobalHandler = function (h: Fn) {
      return set.call(eu, wrapHandler(h));
    };
    set.call(eu, wrapHandler(typeof eu.getGlobalHandler === 'function' ? eu.getGlobalHandler() : undefined));
  }

  function appState(state: string): void {
    if (state === 'background' && !inBackground) {
      inBackground = true;
      add('session', 'end', now() - sessionStart);
      flush();
    } else if (state === 'active' && inBackground) {
      inBackground = false;
      sessionId = 's-' + uuid();
      sessionStart = now();
      add('session', 'start', undefined, { lib: __LIB_VERSION__, platform: String(P!.platform || '') });
    }
  }

  function watchEmitter(mod: Obj | undefined): void {
    if (!mod || mod.__penumbra || typeof mod.emit !== 'function') return;
    mod.__penumbra = true;
    const emit = mod.emit;
    mod.emit = function (this: unknown, ...args: unknown[]) {
      const payload = args[1] as Obj;
      if (args[0] === 'appStateDidChange') safe(() => appState(payload && payload.app_state))();
      return emit.apply(this, args);
    };
  }

  function hookAppState(): void {
    // Bridgeless (new architecture): callable modules are registered through this native hook.
    const reg = g.RN$registerCallableModule;
    if (typeof reg === 'function' && !reg.__penumbra) {
      const w = function (this: unknown, ...args: unknown[]) {
        const factory = args[1] as Fn;
        if (args[0] !== 'RCTDeviceEventEmitter' || typeof factory !== 'function') return reg.apply(this, args);
        return reg.call(this, args[0], function (this: unknown, ...fa: unknown[]) {
          const m = factory.apply(this, fa);
          safe(watchEmitter)(m);
          return m;
        });
      };
      (w as Obj).__penumbra = true;
      g.RN$registerCallableModule = w;
    }
    // Bridge (old architecture): the message queue's callable modules.
    const bridge = g.__fbBatchedBridge;
    if (bridge && typeof bridge.getCallableModule === 'function') safe(watchEmitter)(bridge.getCallableModule('RCTDeviceEventEmitter'));
  }

  let booted = false;
  /** Hook what React Native has defined so far; the rest when it appears (retried below). */
  function boot(): void {
    hookErrorUtils(g.ErrorUtils);
    hookAppState();
    if (booted || !hookXhr()) return;
    booted = true;
    add('session', 'start', undefined, { lib: __LIB_VERSION__, platform: String(P!.platform || '') });
    refreshConfig();
    schedule(2000);
  }

  // ErrorUtils is installed by the bundle's error-guard polyfill (`global.ErrorUtils = …`) and
  // the require function by Metro's prelude (`global.__r = metroRequire`): catch both as they
  // are assigned. Every top-level `__r(id)` (InitializeCore, then the entry) is followed by a
  // boot attempt: by then React Native has defined XMLHttpRequest and the timers.
  const trap = (name: string, onSet: (v: unknown) => unknown) => {
    try {
      let value = g[name];
      Object.defineProperty(g, name, {
        configurable: true,
        enumerable: true,
        get: () => value,
        set: (v: unknown) => {
          value = onSet(v);
        },
      });
    } catch (e) {
      /* a frozen global: the retries below still boot */
    }
  };
  trap('ErrorUtils', (v) => {
    safe(hookErrorUtils)(v);
    return v;
  });
  trap('__r', (v) => {
    if (typeof v !== 'function' || (v as Obj).__penumbra) return v;
    const r = v as Fn;
    const w = function (this: unknown, ...args: unknown[]) {
      try {
        return r.apply(this, args);
      } finally {
        safe(boot)();
      }
    };
    for (const k in r) (w as Obj)[k] = (r as Obj)[k];
    (w as Obj).__penumbra = true;
    return w;
  });

  g.penumbra = {
    lib: __LIB_VERSION__,
    get sessionId() {
      return sessionId;
    },
    track: safe((name: string, attrs?: Obj) => {
      const a: Attrs = {};
      if (attrs) for (const k in attrs) a[k] = String(attrs[k]);
      add('usage', name, undefined, a);
    }),
    flush: safe(flush),
    appState: safe(appState),
    disable: safe(() => {
      disabled = true;
      queue = [];
      early = [];
      if (XHR && openOrig && sendOrig) {
        XHR.prototype.open = openOrig;
        XHR.prototype.send = sendOrig;
      }
    }),
  };
  safe(boot)();
})();

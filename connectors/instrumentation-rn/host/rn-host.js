/*
 * The "native side" of React Native for tests, in plain ES5 so Hermes runs it as is. Evaluated
 * BEFORE the bundle, with globalThis.__HOST__ = { responses: [{ prefix, status, body, delayMs }],
 * actions: [{ at, kind: 'appState'|'call', state?, fn?, args? }], untilMs, expoManifest? }.
 * It provides what React Native's native runtime provides to a bundle:
 *   - __native.setTimeout/clearTimeout on a virtual clock, __native.XMLHttpRequest (a recording
 *     network layer answering from `responses`; no match = network error) and __native.log;
 *   - RN$registerCallableModule (the bridgeless hook through which native reaches JS modules);
 *   - expo.modules.ExpoUpdates.manifestString (the manifest expo-updates launched);
 * and, after the bundle (rn-host-run.js), drives it: app state changes through
 * RCTDeviceEventEmitter, calls into the app with errors routed to ErrorUtils as React Native's
 * message queue does. Everything observable is printed as `@@{json}` lines.
 */
(function (g) {
  var H = g.__HOST__;
  var out = function (o) { g.print('@@' + JSON.stringify(o)); };
  var hostTick = g.__hostTick || g.setTimeout;
  var clock = 0;
  var seq = 0;
  var timers = [];
  function vSet(f, ms) {
    var id = ++seq;
    timers.push({ id: id, at: clock + Math.max(0, ms || 0), f: f, args: Array.prototype.slice.call(arguments, 2) });
    return id;
  }
  function vClear(id) { timers = timers.filter(function (t) { return t.id !== id; }); }

  function Xhr() { this.readyState = 0; this.status = 0; this.responseText = ''; this._h = {}; this._l = []; }
  Xhr.prototype.open = function (m, u) { this._m = m; this._u = u; this.readyState = 1; };
  Xhr.prototype.setRequestHeader = function (k, v) { this._h[String(k).toLowerCase()] = String(v); };
  Xhr.prototype.addEventListener = function (t, f) { if (t === 'readystatechange') this._l.push(f); };
  Xhr.prototype.send = function (body) {
    var self = this; // eslint-disable-line @typescript-eslint/no-this-alias -- ES5 for Hermes: no arrow functions here
    var best = null;
    for (var i = 0; i < H.responses.length; i++) {
      var r = H.responses[i];
      if (self._u.indexOf(r.prefix) === 0 && (!best || r.prefix.length > best.prefix.length)) best = r;
    }
    out({ kind: 'request', at: clock, method: self._m, url: self._u, headers: self._h, body: body === undefined || body === null ? null : String(body), status: best ? best.status : 0 });
    vSet(function () {
      self.readyState = 4;
      self.status = best ? best.status : 0;
      self.responseText = best ? best.body : '';
      for (var j = 0; j < self._l.length; j++) self._l[j].call(self);
      if (typeof self.onreadystatechange === 'function') self.onreadystatechange();
    }, best && best.delayMs !== undefined ? best.delayMs : 40);
  };

  var callables = {};
  var modules = {};
  g.RN$registerCallableModule = function (name, factory) { callables[name] = factory; };
  g.__hostModule = function (name) {
    if (!modules[name] && callables[name]) modules[name] = callables[name]();
    return modules[name];
  };
  g.__native = { setTimeout: vSet, clearTimeout: vClear, XMLHttpRequest: Xhr, log: function (m) { out({ kind: 'log', at: clock, message: String(m) }); } };
  if (H.expoManifest) g.expo = { modules: { ExpoUpdates: { manifestString: H.expoManifest } } };
  g.__hostLoop = function (onAction) {
    var actions = H.actions.slice().sort(function (a, b) { return a.at - b.at; });
    function step() {
      var nextTimer = null;
      for (var i = 0; i < timers.length; i++) if (!nextTimer || timers[i].at < nextTimer.at) nextTimer = timers[i];
      var nextAction = actions.length ? actions[0] : null;
      var at = Math.min(nextTimer ? nextTimer.at : Infinity, nextAction ? nextAction.at : Infinity);
      if (at === Infinity || at > H.untilMs) { out({ kind: 'done', at: clock }); return; }
      clock = at;
      if (nextAction && nextAction.at === at) { actions.shift(); onAction(nextAction); }
      else { vClear(nextTimer.id); try { nextTimer.f.apply(null, nextTimer.args); } catch (e) { out({ kind: 'uncaught', message: String(e && e.message) }); } }
      hostTick(step, 0); // host task boundary: promise jobs of this step run before the next
    }
    hostTick(step, 0);
  };
})(globalThis);

/* Evaluated AFTER the bundle: drive it (see rn-host.js). */
(function (g) {
  function guard(f) {
    // React Native's message queue routes exceptions of native-invoked JS to ErrorUtils.
    try {
      var r = f();
      if (r && typeof r.then === 'function') r.then(null, function (e) { g.ErrorUtils.getGlobalHandler()(e, false); });
    } catch (e) {
      g.ErrorUtils.getGlobalHandler()(e, false);
    }
  }
  g.__hostLoop(function (a) {
    if (a.kind === 'appState') guard(function () { g.__hostModule('RCTDeviceEventEmitter').emit('appStateDidChange', { app_state: a.state }); });
    else if (a.kind === 'call') guard(function () { return g.__app[a.fn].apply(g.__app, a.args || []); });
  });
})(globalThis);

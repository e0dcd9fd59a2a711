/**
 * A sample update bundle in the Expo export layout, generated here (no downloads, no Expo
 * toolchain): what `npx expo export --no-bytecode --platform ios --platform android` writes for
 * a tiny notes app, plus Penumbra's manifest.json. The bundles follow Metro's production shape —
 * prelude, `__d(factory, id, deps)` module definitions, the error-guard polyfill assigning
 * `global.ErrorUtils`, `__r(id)` calls at the end — so the React Native library is exercised
 * the way it runs in an app. "InitializeCore" here takes timers, XMLHttpRequest and the device
 * event emitter from `global.__native`, which the test host (connectors/instrumentation-rn/
 * host) plays the part of React Native's native side.
 *
 * Used by tests, `penumbra start --demo`-style scripts and the docs:
 *   npx tsx pipeline/mobile/sample/make-sample.ts /tmp/notes-update.zip
 */
import { createHash } from 'node:crypto';
import zlib from 'node:zlib';

export interface SampleOptions {
  id?: string;
  version?: string;
  runtimeVersion?: string;
  platforms?: ('ios' | 'android')[];
  apiUrl?: string;
  /** Write the iOS bundle as Hermes bytecode magic (to test the refusal). */
  hermesBytecode?: boolean;
}

/** A valid w×h RGBA PNG of one colour (built with zlib, so assets are real images). */
export function solidPng(w: number, h: number, rgba: [number, number, number, number]): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(zlib.crc32(td) >>> 0);
    return Buffer.concat([len, td, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 6; // RGBA
  const row = Buffer.concat([Buffer.from([0]), Buffer.concat(Array.from({ length: w }, () => Buffer.from(rgba)))]);
  const raw = Buffer.concat(Array.from({ length: h }, () => row));
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', zlib.deflateSync(raw, { level: 9 })), chunk('IEND', Buffer.alloc(0))]);
}

const md5 = (b: Buffer | string) => createHash('md5').update(b).digest('hex');

/** Metro-shaped production bundle of the sample app for one platform. */
export function sampleBundle(platform: string, apiUrl: string, iconKey: string): string {
  const lines = [
    `var __BUNDLE_START_TIME__=Date.now(),__DEV__=false,process=globalThis.process||{};process.env=process.env||{};process.env.NODE_ENV="production";`,
    // Metro's require polyfill, reduced: modules by numeric id, factories get (global, require, …, module, exports, deps).
    `(function(global){var modules=Object.create(null);function define(factory,id,deps){modules[id]={factory:factory,deps:deps,mod:null}}function metroRequire(id){var m=modules[id];if(!m)throw new Error("Requiring unknown module "+id);if(!m.mod){m.mod={exports:{}};m.factory(global,metroRequire,null,null,m.mod,m.mod.exports,m.deps)}return m.mod.exports}global.__d=define;global.__r=metroRequire})(globalThis);`,
    // error-guard polyfill: what React Native puts in every bundle.
    `(function(global){var _h=function(e){throw e};var ErrorUtils={setGlobalHandler:function(f){_h=f},getGlobalHandler:function(){return _h},reportError:function(e){_h&&_h(e,false)},reportFatalError:function(e){_h&&_h(e,true)}};global.ErrorUtils=ErrorUtils})(globalThis);`,
    // Module 0 — InitializeCore: timers, networking (fetch over XMLHttpRequest, as in React Native) and device events.
    `__d(function(global,_$$_REQUIRE,_a,_b,module,exports,_deps){var n=global.__native;global.setTimeout=n.setTimeout;global.clearTimeout=n.clearTimeout;global.XMLHttpRequest=n.XMLHttpRequest;` +
      `global.fetch=function(url,o){return new Promise(function(resolve,reject){var x=new global.XMLHttpRequest();x.open((o&&o.method)||"GET",url);x.onreadystatechange=function(){if(x.readyState!==4)return;if(!x.status)return reject(new TypeError("Network request failed"));resolve({status:x.status,ok:x.status>=200&&x.status<300,json:function(){return Promise.resolve(JSON.parse(x.responseText))}})};x.send((o&&o.body)||null)})};` +
      `var listeners={};var emitter={addListener:function(t,f){(listeners[t]=listeners[t]||[]).push(f)},emit:function(t,p){(listeners[t]||[]).forEach(function(f){f(p)})}};` +
      `if(typeof global.RN$registerCallableModule==="function")global.RN$registerCallableModule("RCTDeviceEventEmitter",function(){return emitter});` +
      `global.ErrorUtils.setGlobalHandler(function(e,isFatal){n.log("redbox"+(isFatal?" (fatal)":"")+": "+e.message)});module.exports={emitter:emitter}},0,[]);`,
    // Module 1 — the app: loads notes from the declared API, tracks usage, may throw.
    `__d(function(global,_$$_REQUIRE,_a,_b,module,exports,_deps){var core=_$$_REQUIRE(_deps[0]);var API="${apiUrl}";var state={notes:[],appState:"active",icon:"${iconKey}"};` +
      `function track(name,attrs){if(global.penumbra)global.penumbra.track(name,attrs)}` +
      `core.emitter.addListener("appStateDidChange",function(p){state.appState=p.app_state});` +
      `function load(){return fetch(API+"/notes").then(function(r){return r.json()}).then(function(j){state.notes=j.notes||[];track("notes-loaded",{count:state.notes.length})})}` +
      `load();global.__app={platform:"${platform}",state:state,load:load,openNote:function(i){track("open-note");if(!state.notes[i])throw new TypeError("note "+i+" is undefined");return state.notes[i]},` +
      `save:function(){return fetch(API+"/notes",{method:"POST",body:"{}"})}};module.exports=global.__app},1,[0]);`,
    `__r(0);`,
    `__r(1);`,
  ];
  return lines.join('\n') + '\n';
}

/** The files of the sample update bundle (Expo export layout + Penumbra manifest). */
export function sampleExpoFiles(o: SampleOptions = {}): Map<string, Buffer> {
  const id = o.id ?? 'com.example.notes.app';
  const version = o.version ?? '1.0.0';
  const runtimeVersion = o.runtimeVersion ?? '1.0.0';
  const platforms = o.platforms ?? ['ios', 'android'];
  const apiUrl = o.apiUrl ?? 'https://api.example.com/v1';
  const files = new Map<string, Buffer>();
  const icon = solidPng(8, 8, [0x30, 0x60, 0xc0, 0xff]);
  const splash = solidPng(16, 4, [0xf0, 0xa0, 0x20, 0xff]);
  const iconKey = md5(icon);
  const splashKey = md5(splash);
  files.set(`assets/${iconKey}`, icon);
  files.set(`assets/${splashKey}`, splash);
  const fileMetadata: Record<string, unknown> = {};
  for (const platform of platforms) {
    let bundle: Buffer = Buffer.from(sampleBundle(platform, apiUrl, iconKey), 'utf8');
    if (o.hermesBytecode && platform === 'ios') bundle = Buffer.concat([Buffer.from([0xc6, 0x1f, 0xbc, 0x03, 0xc1, 0x03, 0x19, 0x1f]), Buffer.alloc(64)]);
    const ext = o.hermesBytecode && platform === 'ios' ? 'hbc' : 'js';
    const name = `_expo/static/js/${platform}/index-${md5(bundle)}.${ext}`;
    files.set(name, bundle);
    fileMetadata[platform] = { bundle: name, assets: [{ path: `assets/${iconKey}`, ext: 'png' }, { path: `assets/${splashKey}`, ext: 'png' }] };
  }
  files.set('metadata.json', Buffer.from(JSON.stringify({ version: 0, bundler: 'metro', fileMetadata }, null, 2) + '\n'));
  const manifest = {
    id, version, name: 'Notes (sample update)', runtimeVersion, platforms,
    endpoints: { api: apiUrl },
    extra: { apiBase: apiUrl, expoClient: { name: 'Notes', slug: 'notes', version, runtimeVersion } },
  };
  files.set('manifest.json', Buffer.from(JSON.stringify(manifest, null, 2) + '\n'));
  return new Map([...files.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

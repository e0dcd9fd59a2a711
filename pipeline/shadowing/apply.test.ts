import { createHash } from 'node:crypto';
import type { ShadowConfig } from '../domain/types.ts';
import { ArchiveRejectedError, ValidationError } from '../errors.ts';
import { applyControl, applyShadowConfig, endpointRewrites, injectionPoint, rewriteText, scriptSafeJson, type ApplyContext } from './apply.ts';
import type { ItemTree } from './archive.ts';
import { writeArchive } from './archive.ts';
import { goldenConfig, goldenContext, loadFixture } from './fixtures.ts';

const LIB = '/* test lib */';
const SRI = `sha384-${createHash('sha384').update(LIB).digest('base64')}`;

function item(files: Record<string, string | Buffer>, manifest: Record<string, unknown> = {}): ItemTree {
  const m = { id: 'com.example.t', version: '1.0.0', name: 'T', entry: 'index.html', endpoints: { api: 'https://api.example.com/v1' }, ...manifest };
  const map = new Map<string, Buffer>([['manifest.json', Buffer.from(JSON.stringify(m))]]);
  for (const [p, v] of Object.entries(files)) map.set(p, Buffer.isBuffer(v) ? v : Buffer.from(v));
  return { manifest: m as ItemTree['manifest'], files: map };
}
const config = (over: Partial<ShadowConfig> = {}): ShadowConfig => ({
  name: 'exp',
  instrumentation: { capture: { performance: true, errors: true, usage: true }, points: [], sampleRate: 1 },
  endpoints: { api: 'https://shadow.example.com/v1' },
  traffic: { percentage: 10, match: 'all', rules: [] },
  ...over,
});
const ctx = (over: Partial<ApplyContext> = {}): ApplyContext => ({
  library: { fileName: 'penumbra-instrument-1.0.0.js', source: LIB },
  identity: { itemId: 'com.example.t', version: '1.0.0', variant: 'exp', profileVersion: 7 },
  runtimeConfigUrl: 'http://127.0.0.1:7070/api/v1/items/com.example.t/runtime-config?variant=exp',
  telemetryUrl: 'http://127.0.0.1:7070/api/v1/telemetry',
  ...over,
});
const text = (t: ItemTree, p: string): string => (t.files.get(p) as Buffer).toString('utf8');

describe('HTML injection', () => {
  test.each([
    ['before the first script', '<html><head><title>t</title><script src="a.js"></script></head></html>', '<script src="a.js">'],
    ['not a script in a comment', '<head><!-- <script> --><meta charset="utf-8"></head><body><script>1</script>', '<script>1'],
    ['not a script inside a title or an attribute', '<head><title><script></title><meta content="<script>"></head>x', '</head>'],
    ['end of head when there is no script', '<!doctype html><html><HEAD><meta charset="utf-8"></HEAD><body></body></html>', '</HEAD>'],
    ['after <html> without head', '<!doctype html><html lang="en"><body>x</body></html>', '<body>'],
    ['after the doctype', '<!DOCTYPE html><p>x</p>', '<p>x'],
  ])('%s', (_label, html, before) => {
    expect(html.slice(injectionPoint(html))).toMatch(new RegExp('^' + before.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
  });

  test('every page gets identity + library with SRI and paths relative to the page', () => {
    const { tree, report } = applyShadowConfig(
      item({ 'index.html': '<head></head>', 'a/b/deep.HTM': '<html><body></body></html>', 'notes.txt': 'x' }),
      config(),
      ctx(),
    );
    expect(report.injectedPages).toEqual(['a/b/deep.HTM', 'index.html']);
    expect(text(tree, 'index.html')).toContain(`<script src="./__penumbra/penumbra-instrument-1.0.0.js" integrity="${SRI}" crossorigin="anonymous"></script></head>`);
    expect(text(tree, 'a/b/deep.HTM')).toContain('src="../../__penumbra/penumbra-instrument-1.0.0.js"');
    expect(tree.files.get('__penumbra/penumbra-instrument-1.0.0.js')?.toString()).toBe(LIB);
    const identity = JSON.parse(text(tree, '__penumbra/identity.json'));
    expect(identity).toEqual({ ...ctx().identity, runtimeConfigUrl: ctx().runtimeConfigUrl, telemetryUrl: ctx().telemetryUrl });
    const inline = /<script>window.__PENUMBRA__=(.*?);<\/script>/.exec(text(tree, 'index.html'));
    expect(JSON.parse(inline?.[1] ?? 'null')).toEqual(identity);
  });

  test('identity values cannot break out of the inline script', () => {
    const evil = 'http://x/</script><script>alert(1)</script><!--\u2028';
    const { tree } = applyShadowConfig(item({ 'index.html': '<head></head>' }), config(), ctx({ telemetryUrl: evil }));
    const html = text(tree, 'index.html');
    expect(html.match(/<\/script>/g)).toHaveLength(2); // only our two closing tags
    expect(html).not.toContain('<!--');
    const json = /window.__PENUMBRA__=(.*?);<\/script>/.exec(html)?.[1] ?? '';
    expect(JSON.parse(json).telemetryUrl).toBe(evil);
    expect(scriptSafeJson({ a: '<&>' })).toBe('{"a":"\\u003c\\u0026\\u003e"}');
  });

  test('warns about <base href> and CSP meta tags', () => {
    const { report } = applyShadowConfig(
      item({ 'index.html': '<head><base href="/x/"><meta http-equiv="Content-Security-Policy" content="script-src \'self\'"></head>' }),
      config(),
      ctx(),
    );
    expect(report.warnings).toHaveLength(2);
  });
});

describe('JS entry', () => {
  test('identity module, then the library, imported first (after a hashbang); relative to the entry', () => {
    const { tree } = applyShadowConfig(
      item({ 'src/main.mjs': '#!/usr/bin/env node\nimport x from "./x.js";\n', 'src/x.js': 'export default 1' }, { entry: 'src/main.mjs' }),
      config(),
      ctx(),
    );
    expect(text(tree, 'src/main.mjs')).toBe(
      '#!/usr/bin/env node\nimport "../__penumbra/identity.js";\nimport "../__penumbra/penumbra-instrument-1.0.0.js";\nimport x from "./x.js";\n',
    );
    expect(text(tree, '__penumbra/identity.js')).toMatch(/^globalThis.__PENUMBRA__ = \{"itemId":"com.example.t",.*"profileVersion":7,/);
    expect(text(tree, 'src/x.js')).toBe('export default 1');
  });
});

describe('endpoint rewriting', () => {
  const rw = (original: Record<string, string>, overrides: Record<string, string>, s: string) => rewriteText(s, endpointRewrites(original, overrides));

  test('with or without trailing slashes, at URL boundaries only', () => {
    const o = { api: 'https://api.example.com/v1/' };
    const n = { api: 'https://new.example.com/v2' };
    expect(rw(o, n, '"https://api.example.com/v1" "https://api.example.com/v1/" https://api.example.com/v1/x?y')).toEqual({
      text: '"https://new.example.com/v2" "https://new.example.com/v2/" https://new.example.com/v2/x?y',
      replacements: 3,
    });
    expect(rw(o, n, 'https://api.example.com/v10 https://api.example.com/v1.2 https://api.example.com/v1:8').replacements).toBe(0);
    expect(rw({ api: 'https://api.example.com' }, { api: 'https://b.example' }, 'https://api.example.com.evil.test https://api.example.com:8443').replacements).toBe(0);
  });

  test('longest base first; overrides that contain another base are not rewritten twice', () => {
    const o = { a: 'https://x.example.com', b: 'https://x.example.com/b' };
    expect(rw(o, { a: 'https://y.example.com', b: 'https://x.example.com/b/c' }, 'https://x.example.com/b/1 https://x.example.com/1').text).toBe(
      'https://x.example.com/b/c/1 https://y.example.com/1',
    );
    // Override of a shorter base containing the original of a longer one: single pass.
    expect(rw(o, { a: 'https://x.example.com/b' }, 'https://x.example.com/z').text).toBe('https://x.example.com/b/z');
    // A declared but not overridden longer base is shielded from the shorter override.
    expect(rw(o, { a: 'https://y.example.com' }, 'https://x.example.com/b/1').text).toBe('https://x.example.com/b/1');
  });

  test('JSON-escaped slashes are rewritten too', () => {
    expect(rw({ api: 'https://a.example/v1' }, { api: 'https://b.example/v2' }, '"https:\\/\\/a.example\\/v1\\/n"').text).toBe('"https:\\/\\/b.example\\/v2\\/n"');
  });

  test('only text assets; binaries and non-UTF-8 text untouched and reported; manifest regenerated', () => {
    const url = 'https://api.example.com/v1';
    const latin1 = Buffer.concat([Buffer.from('caf\xe9 ', 'latin1'), Buffer.from(url)]);
    const bin = Buffer.concat([Buffer.from(url), Buffer.from([0, 1, 2])]);
    const input = item({ 'index.html': `<a href="${url}/x">`, 'a.css': `@import "${url}/s.css";`, 'l.txt': latin1, 'b.png': bin, 'c.JSON': `"${url}"` });
    const { tree, report } = applyShadowConfig(input, config(), ctx());
    expect(report.files).toEqual([
      { path: 'a.css', replacements: 1 },
      { path: 'c.JSON', replacements: 1 },
      { path: 'index.html', replacements: 1 },
    ]);
    expect(report.totalReplacements).toBe(3);
    expect(report.skippedNonUtf8).toEqual(['l.txt']);
    expect(tree.files.get('l.txt')?.equals(latin1)).toBe(true);
    expect(tree.files.get('b.png')?.equals(bin)).toBe(true);
    const m = JSON.parse(text(tree, 'manifest.json'));
    expect(m.endpoints).toEqual({ api: 'https://shadow.example.com/v1' });
    expect(m.shadow).toEqual({ name: 'exp', profileVersion: 7 });
    expect(tree.manifest.endpoints).toEqual(m.endpoints);
  });
});

describe('guards and purity', () => {
  test.each(['__penumbra/x.js', '__PENUMBRA/identity.json'])('refuses items that ship %s', (p) => {
    let err: unknown;
    try {
      applyShadowConfig(item({ 'index.html': 'x', [p]: 'x' }), config(), ctx());
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ArchiveRejectedError);
    expect((err as ArchiveRejectedError).reason).toBe('reserved-path');
  });

  test.each([
    ['library file name with a path', { library: { fileName: '../evil.js', source: LIB } }],
    ['identity of another variant', { identity: { itemId: 'com.example.t', version: '1.0.0', variant: 'other', profileVersion: 1 } }],
    ['identity of another item', { identity: { itemId: 'com.example.u', version: '1.0.0', variant: 'exp', profileVersion: 1 } }],
  ])('refuses a context with a %s', (_label, over) => {
    expect(() => applyShadowConfig(item({ 'index.html': 'x' }), config(), ctx(over as Partial<ApplyContext>))).toThrow(ValidationError);
  });

  test('refuses endpoint overrides the manifest does not declare', () => {
    expect(() => applyShadowConfig(item({ 'index.html': 'x' }), config({ endpoints: { pay: 'https://p.example' } }), ctx())).toThrow(ValidationError);
  });

  test('never mutates or aliases the input; same inputs give byte-identical archives', async () => {
    const input = await loadFixture('api-refs');
    const copy = new Map([...input.files].map(([p, b]) => [p, Buffer.from(b)]));
    const a = applyShadowConfig(input, goldenConfig('api-refs', input), goldenContext(input));
    for (const [p, b] of a.tree.files) if (input.files.has(p)) expect(b.buffer === input.files.get(p)?.buffer && b.byteOffset === input.files.get(p)?.byteOffset).toBe(false);
    a.tree.files.get('data/legacy-latin1.txt')?.fill(0);
    for (const [p, b] of copy) expect(input.files.get(p)?.equals(b)).toBe(true);
    const b1 = applyShadowConfig(input, goldenConfig('api-refs', input), goldenContext(input));
    const b2 = applyShadowConfig(input, goldenConfig('api-refs', input), goldenContext(input));
    expect((await writeArchive(b1.tree, 'zip')).equals(await writeArchive(b2.tree, 'zip'))).toBe(true);
    expect(b1.report).toEqual(b2.report);
  });
});

describe('applyControl', () => {
  const controlCtx = (over: Partial<ApplyContext> = {}) =>
    ctx({ identity: { itemId: 'com.example.t', version: '1.0.0', variant: 'control', profileVersion: 7 }, runtimeConfigUrl: 'http://127.0.0.1:7070/api/v1/items/com.example.t/runtime-config?variant=control', ...over });

  test('is the original with the library and identity injected and no endpoint rewritten', () => {
    const input = item({
      'index.html': '<head><script src="app.js"></script></head>',
      'app.js': 'fetch("https://api.example.com/v1/orders")',
      'data.json': '{"api":"https:\\/\\/api.example.com\\/v1"}',
    });
    const { tree, report } = applyControl(input, controlCtx());
    expect(report.totalReplacements).toBe(0);
    expect(report.injectedPages).toEqual(['index.html']);
    // Every file of the original is byte-identical, except the pages that carry the injection.
    for (const [p, bytes] of input.files) {
      if (p === 'index.html' || p === 'manifest.json') continue;
      expect(tree.files.get(p)).toEqual(bytes);
    }
    expect(text(tree, 'index.html')).toMatch(/^<head><script>window\.__PENUMBRA__=\{[^<]*"variant":"control"/);
    expect(text(tree, 'index.html')).toContain(`integrity="${SRI}"`);
    expect(JSON.parse(text(tree, 'manifest.json')).endpoints).toEqual({ api: 'https://api.example.com/v1' });
    expect(JSON.parse(text(tree, '__penumbra/identity.json')).variant).toBe('control');
    // The original tree is not touched.
    expect((input.files.get('index.html') as Buffer).toString()).toBe('<head><script src="app.js"></script></head>');
  });

  test('refuses an identity that is not the control, and is deterministic', async () => {
    expect(() => applyControl(item({ 'index.html': 'x' }), ctx())).toThrow(ValidationError);
    const input = item({ 'index.html': '<p>x</p>' });
    const a = await writeArchive(applyControl(input, controlCtx()).tree, 'zip');
    const b = await writeArchive(applyControl(input, controlCtx()).tree, 'zip');
    expect(a.equals(b)).toBe(true);
  });
});

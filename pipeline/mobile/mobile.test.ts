/**
 * The mobile core against the Expo Updates v1 spec: Expo layout ingest and refusals, manifest
 * building (ids, hashes), request parsing and negotiation, the manifest/directive choice, and
 * the encoded answers read back with Expo's own parser (@expo/multipart-body-parser) and
 * signatures checked with a certificate made by @expo/code-signing-certificates.
 */
import { createHash } from 'node:crypto';
import { parseMultipartMixedResponseAsync } from '@expo/multipart-body-parser';
import {
  convertCertificateToCertificatePEM, convertKeyPairToPEM, generateKeyPair, generateSelfSignedCodeSigningCertificate, validateSelfSignedCertificate,
} from '@expo/code-signing-certificates';
import forge from 'node-forge';
import { readArchiveBuffer, writeArchive } from '../shadowing/archive.ts';
import { manifestFromFiles } from '../shadowing/manifest.ts';
import { ArchiveRejectedError, PenumbraError } from '../errors.ts';
import { rawZip } from '../shadowing/test-archives.ts';
import { sampleExpoFiles } from './sample/sample-item.ts';
import { readExpoLayout, type ExpoPlatform } from './expo-layout.ts';
import { buildExpoManifest, expoAssetHash, expoUpdateId } from './expo-manifest.ts';
import { chooseAnswer, encodeAnswer, negotiateFormat, parseExpoRequest, checkSignatureRequest, type ExpoRequest } from './protocol.ts';
import { parseSfvDictionary, serializeSfvDictionary } from './sfv.ts';
import { loadCodeSigningKey } from './signing.ts';
import { applyExpoControl, applyExpoShadow, rnPrelude } from './rn-shadow.ts';

const treeOf = (files: Map<string, Buffer>) => ({ manifest: manifestFromFiles(files), files });
const UPDATE_HEADERS = { 'expo-protocol-version': '1', 'expo-platform': 'ios', 'expo-runtime-version': '1.0.0', accept: 'application/expo+json;q=0.9, application/json;q=0.8, multipart/mixed' };

async function rejection(p: Promise<unknown>): Promise<ArchiveRejectedError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof ArchiveRejectedError) return err;
    throw err;
  }
  throw new Error('expected a refusal');
}

describe('ingest of the Expo export layout', () => {
  it('accepts the sample update bundle and takes the first platform bundle as entry', async () => {
    const files = sampleExpoFiles();
    const tree = await readArchiveBuffer(await writeArchive(treeOf(files), 'tar.gz'));
    expect(tree.manifest).toMatchObject({ id: 'com.example.notes.app', runtimeVersion: '1.0.0', platforms: ['ios', 'android'] });
    expect(tree.manifest.entry).toMatch(/^_expo\/static\/js\/ios\/index-[0-9a-f]{32}\.js$/);
    const layout = readExpoLayout(tree.files, ['ios', 'android']);
    expect(layout.platforms.android?.assets).toHaveLength(2);
  });

  it('refuses Hermes bytecode naming the export flag that writes plain JS', async () => {
    const files = sampleExpoFiles({ hermesBytecode: true });
    const err = await rejection(readArchiveBuffer(await writeArchive({ manifest: { id: 'x', version: '1.0.0', name: 'x', entry: 'x' }, files }, 'zip')));
    expect(err.reason).toBe('hermes-bytecode');
    expect(err.message).toContain('npx expo export --no-bytecode');
    expect(err.issues[0].path).toBe('metadata/fileMetadata/ios/bundle');
  });

  it('refuses a missing metadata.json, an unlisted platform, a missing asset and a bad runtimeVersion', async () => {
    const cases: [string, (f: Map<string, Buffer>) => void][] = [
      ['expo-metadata-missing', (f) => f.delete('metadata.json')],
      ['expo-platform-missing', (f) => f.set('metadata.json', Buffer.from(JSON.stringify({ version: 0, fileMetadata: { ios: JSON.parse(String(f.get('metadata.json'))).fileMetadata.ios } })))],
      ['expo-asset-missing', (f) => f.delete([...f.keys()].find((k) => k.startsWith('assets/'))!)],
      ['manifest-invalid', (f) => f.set('manifest.json', Buffer.from(JSON.stringify({ ...JSON.parse(String(f.get('manifest.json'))), runtimeVersion: '' })))],
      ['manifest-invalid', (f) => f.set('manifest.json', Buffer.from(JSON.stringify({ ...JSON.parse(String(f.get('manifest.json'))), platforms: ['web'] })))],
    ];
    for (const [reason, mutate] of cases) {
      const files = sampleExpoFiles();
      mutate(files);
      const zip = rawZip([...files.entries()].map(([name, data]) => ({ name, data })));
      expect((await rejection(readArchiveBuffer(zip))).reason).toBe(reason);
    }
  });

  it('keeps the hostile-archive refusals for update bundles', async () => {
    const files = [...sampleExpoFiles().entries()].map(([name, data]) => ({ name, data }));
    const zip = rawZip([...files, { name: '../evil.js', data: Buffer.from('x') }]);
    expect((await rejection(readArchiveBuffer(zip))).reason).toBe('path-traversal');
  });
});

describe('Expo manifest', () => {
  const files = sampleExpoFiles();
  const layout = readExpoLayout(files, ['ios', 'android']);
  const build = (sha: string, platform: ExpoPlatform) =>
    buildExpoManifest({ itemId: 'com.example.notes.app', variant: 'original', variantSha256: sha, platform, layout, files, runtimeVersion: '1.0.0', createdAt: '2026-01-01T00:00:00.000Z', assetUrl: (p) => `https://p.example/a/${sha}/${p}`, extra: { a: 1 } });

  it('derives a UUID id from the variant bytes and platform, stable and distinct', () => {
    const a = build('a'.repeat(64), 'ios');
    expect(a.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(build('a'.repeat(64), 'ios').id).toBe(a.id);
    expect(build('b'.repeat(64), 'ios').id).not.toBe(a.id);
    expect(build('a'.repeat(64), 'android').id).not.toBe(a.id);
    expect(a.id).toBe(expoUpdateId('a'.repeat(64), 'ios'));
  });

  it('lists the launch asset and assets with base64url SHA-256 hashes of their bytes', () => {
    const m = build('c'.repeat(64), 'ios');
    const bundlePath = layout.platforms.ios!.bundle;
    expect(m.launchAsset.hash).toBe(createHash('sha256').update(files.get(bundlePath)!).digest('base64url'));
    expect(m.launchAsset).toMatchObject({ contentType: 'application/javascript', url: `https://p.example/a/${'c'.repeat(64)}/${bundlePath}` });
    expect(m.launchAsset.hash).toMatch(/^[A-Za-z0-9_-]{43}$/);
    for (const a of m.assets) {
      const p = `assets/${a.key}`;
      expect(a.hash).toBe(expoAssetHash(files.get(p)!));
      expect(a).toMatchObject({ contentType: 'image/png', fileExtension: '.png' });
    }
    expect(m).toMatchObject({ runtimeVersion: '1.0.0', createdAt: '2026-01-01T00:00:00.000Z', metadata: { item: 'com.example.notes.app', variant: 'original' }, extra: { a: 1 } });
  });
});

describe('requests', () => {
  it('parses the spec headers, with the device id from penumbra-user-id or eas-client-id', () => {
    const r = parseExpoRequest({ ...UPDATE_HEADERS, 'expo-channel-name': 'production', 'expo-current-update-id': 'ABC-1', 'eas-client-id': 'dev-7', 'expo-expect-signature': 'sig, keyid="main", alg="rsa-v1_5-sha256"' });
    expect(r).toMatchObject({ platform: 'ios', runtimeVersion: '1.0.0', channel: 'production', currentUpdateId: 'abc-1', userId: 'dev-7', format: 'multipart', expectSignature: { sig: true, keyid: 'main', alg: 'rsa-v1_5-sha256' } });
    expect(parseExpoRequest({ ...UPDATE_HEADERS, 'penumbra-user-id': 'u1', 'eas-client-id': 'dev-7' }).userId).toBe('u1');
  });

  it('answers 400 naming the header for a bad platform or a missing runtime version, 406 for another protocol version', () => {
    const status = (h: Record<string, string>) => {
      try {
        parseExpoRequest(h);
      } catch (err) {
        return [(err as PenumbraError).status, (err as PenumbraError).issues.map((i) => i.path).join(',')];
      }
      return [200, ''];
    };
    expect(status({ ...UPDATE_HEADERS, 'expo-platform': 'web' })).toEqual([400, 'header/expo-platform']);
    const { 'expo-runtime-version': _rv, ...noRuntime } = UPDATE_HEADERS;
    expect(status(noRuntime)).toEqual([400, 'header/expo-runtime-version']);
    expect(status({ ...UPDATE_HEADERS, 'expo-protocol-version': '0' })).toEqual([406, 'header/expo-protocol-version']);
    expect(status({ ...UPDATE_HEADERS, accept: 'text/html' })).toEqual([406, 'header/accept']);
  });

  it('negotiates by q value, multipart first among equals', () => {
    expect(negotiateFormat('application/expo+json;q=0.9, application/json;q=0.8, multipart/mixed')).toBe('multipart');
    expect(negotiateFormat('application/expo+json, multipart/mixed;q=0.5')).toBe('expo+json');
    expect(negotiateFormat('application/json')).toBe('json');
    expect(negotiateFormat('*/*')).toBe('multipart');
    expect(negotiateFormat('multipart/mixed;q=0')).toBeNull();
  });

  it('reads and writes Expo SFV dictionaries', () => {
    const d = { sig: 'a/b+c=', keyid: 'main', n: 3, ok: true, no: false };
    expect(parseSfvDictionary(serializeSfvDictionary(d))).toEqual(d);
    expect(parseSfvDictionary('sig, keyid="ro\\"ot"')).toEqual({ sig: true, keyid: 'ro"ot' });
    expect(parseSfvDictionary('Sig')).toBeNull();
    expect(parseSfvDictionary('a="x",')).toBeNull();
  });
});

describe('answers', () => {
  const files = sampleExpoFiles();
  const layout = readExpoLayout(files, ['ios']);
  const manifest = buildExpoManifest({ itemId: 'i', variant: 'v', variantSha256: 'd'.repeat(64), platform: 'ios', layout, files, runtimeVersion: '1.0.0', createdAt: '2026-01-01T00:00:00.000Z', assetUrl: (p) => `https://p/${p}`, extra: {} });
  const request: ExpoRequest = parseExpoRequest({ ...UPDATE_HEADERS, 'expo-expect-signature': 'sig, keyid="main", alg="rsa-v1_5-sha256"' });

  it('chooses manifest, noUpdateAvailable and rollBackToEmbedded as the spec and the issue say', () => {
    const base = { rolledBack: false, rolledBackAt: '2026-01-02T00:00:00.000Z', manifest };
    expect(chooseAnswer(base).kind).toBe('manifest');
    expect(chooseAnswer({ ...base, currentUpdateId: manifest.id })).toMatchObject({ kind: 'directive', directive: { type: 'noUpdateAvailable' } });
    expect(chooseAnswer({ ...base, manifest: null })).toMatchObject({ kind: 'directive', directive: { type: 'noUpdateAvailable' } });
    expect(chooseAnswer({ ...base, rolledBack: true, currentUpdateId: manifest.id, embeddedUpdateId: 'e' })).toEqual({ kind: 'directive', directive: { type: 'rollBackToEmbedded', parameters: { commitTime: '2026-01-02T00:00:00.000Z' } } });
    expect(chooseAnswer({ ...base, rolledBack: true, currentUpdateId: 'e', embeddedUpdateId: 'e' })).toMatchObject({ directive: { type: 'noUpdateAvailable' } });
  });

  it('encodes parts Expo\'s parser reads, signed so that the certificate verifies them', async () => {
    const keyPair = generateKeyPair();
    const cert = generateSelfSignedCodeSigningCertificate({ keyPair, validityNotBefore: new Date(Date.now() - 1000), validityNotAfter: new Date(Date.now() + 86400_000), commonName: 'Penumbra test' });
    validateSelfSignedCertificate(cert, keyPair);
    const key = loadCodeSigningKey(convertKeyPairToPEM(keyPair).privateKeyPEM, 'main');
    checkSignatureRequest(request.expectSignature, key);
    const certificate = forge.pki.certificateFromPem(convertCertificateToCertificatePEM(cert));
    for (const answer of [chooseAnswer({ rolledBack: false, rolledBackAt: '', manifest }), chooseAnswer({ rolledBack: true, rolledBackAt: '2026-01-02T00:00:00.000Z', manifest })]) {
      const enc = encodeAnswer({ answer, request, filters: { item: 'i', variant: 'v' }, serverHeaders: { 'penumbra-user-id': 'u1' }, signingKey: key });
      expect(enc.headers).toMatchObject({ 'expo-protocol-version': '1', 'expo-sfv-version': '0', 'cache-control': 'private, max-age=0', 'expo-manifest-filters': 'item="i", variant="v"', 'expo-server-defined-headers': 'penumbra-user-id="u1"' });
      const parts = await parseMultipartMixedResponseAsync(enc.headers['content-type'], enc.body);
      expect(parts).toHaveLength(1);
      const [part] = parts;
      expect(part.name).toBe(answer.kind === 'manifest' ? 'manifest' : 'directive');
      expect(part.headers.get('content-type')).toBe('application/json');
      const sig = parseSfvDictionary(String(part.headers.get('expo-signature')))!;
      expect(sig).toMatchObject({ keyid: 'main', alg: 'rsa-v1_5-sha256' });
      const md = forge.md.sha256.create();
      md.update(part.body, 'utf8');
      expect((certificate.publicKey as forge.pki.rsa.PublicKey).verify(md.digest().bytes(), forge.util.decode64(String(sig.sig)))).toBe(true);
      // A changed byte does not verify.
      const md2 = forge.md.sha256.create();
      md2.update(part.body.replace('"', "'"), 'utf8');
      expect((certificate.publicKey as forge.pki.rsa.PublicKey).verify(md2.digest().bytes(), forge.util.decode64(String(sig.sig)))).toBe(false);
      expect(JSON.parse(part.body)).toEqual(answer.kind === 'manifest' ? manifest : answer.directive);
    }
  });

  it('answers 406 when the client expects a signature this server cannot give, or a directive in JSON', () => {
    expect(() => checkSignatureRequest({ sig: true }, null)).toThrow(/PENUMBRA_EXPO_SIGNING_KEY_FILE/);
    const jsonReq = { ...request, format: 'expo+json' as const, expectSignature: null };
    const rollback = chooseAnswer({ rolledBack: true, rolledBackAt: 'x', manifest });
    expect(() => encodeAnswer({ answer: rollback, request: jsonReq, filters: {}, serverHeaders: {}, signingKey: null })).toThrow(/multipart/);
    const ok = encodeAnswer({ answer: chooseAnswer({ rolledBack: false, rolledBackAt: '', manifest }), request: jsonReq, filters: {}, serverHeaders: {}, signingKey: null });
    expect(ok.headers['content-type']).toBe('application/expo+json');
    expect(JSON.parse(ok.body.toString())).toEqual(manifest);
  });
});

describe('RN shadow', () => {
  const tree = treeOf(sampleExpoFiles());
  const lib = { fileName: 'penumbra-instrument-rn-1.0.0.js', source: '(function(){globalThis.__libRan=1})();\n' };
  const config = { name: 'fast-api', instrumentation: { capture: { performance: true, errors: true, usage: true }, points: [], sampleRate: 1 }, endpoints: { api: 'https://shadow-api.example.com/v1' }, traffic: { percentage: 50, match: 'all' as const, rules: [] } };
  const ctx = { library: lib, identity: { itemId: tree.manifest.id, version: '1.0.0', variant: 'fast-api', profileVersion: 2 }, runtimeConfigUrl: 'https://p/rc', telemetryUrl: 'https://p/t' };

  it('prepends identity and library on line 1 of each bundle, rewrites endpoints in bundles and extra, keeps line numbers', () => {
    const { tree: sh, report } = applyExpoShadow(tree, config, ctx);
    const layout = readExpoLayout(tree.files, ['ios', 'android']);
    for (const platform of ['ios', 'android'] as const) {
      const p = layout.platforms[platform]!.bundle;
      const before = tree.files.get(p)!.toString();
      const after = sh.files.get(p)!.toString();
      expect(after.split('\n')).toHaveLength(before.split('\n').length);
      expect(after.startsWith(rnPrelude({ ...ctx.identity, runtimeConfigUrl: 'https://p/rc', telemetryUrl: 'https://p/t', platform }, lib.source))).toBe(true);
      expect(after).toContain('https://shadow-api.example.com/v1');
      expect(after).not.toContain('https://api.example.com/v1');
    }
    expect(sh.manifest.extra).toMatchObject({ apiBase: 'https://shadow-api.example.com/v1' });
    expect(JSON.parse(sh.files.get('manifest.json')!.toString())).toMatchObject({ shadow: { name: 'fast-api', profileVersion: 2 }, endpoints: { api: 'https://shadow-api.example.com/v1' } });
    expect(report.totalReplacements).toBe(3);
    expect(report.injectedPages).toHaveLength(2);
    // Binary assets are byte-identical; the result is deterministic.
    for (const [p, b] of tree.files) if (p.startsWith('assets/')) expect(sh.files.get(p)!.equals(b)).toBe(true);
    const again = applyExpoShadow(tree, config, ctx).tree;
    expect([...again.files.entries()].every(([p, b]) => sh.files.get(p)!.equals(b))).toBe(true);
  });

  it('builds the control arm with no rewrites when no endpoints are overridden', () => {
    const { tree: sh, report } = applyExpoControl(tree, { ...ctx, identity: { ...ctx.identity, variant: 'control' } });
    expect(sh.files.get(tree.manifest.entry)!.toString()).toContain('"variant":"control"');
    expect(report.totalReplacements).toBe(0);
    expect(sh.manifest.extra).toEqual(tree.manifest.extra);
  });
});

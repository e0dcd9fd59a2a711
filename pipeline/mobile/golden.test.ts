/**
 * Golden answers: the manifest of the sample update bundle (fixed variant sha256 and time) and
 * the encoded multipart bodies of each answer kind (fixed boundary), byte for byte. A change
 * to ids, hashes, field order or framing shows up here first — apps in the field hold ids and
 * compare them. Regenerate deliberately: UPDATE_GOLDEN=1 … jest pipeline/mobile/golden, then
 * review the diff. (Asset hashes depend on zlib's deflate output for the generated PNGs.)
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { sampleExpoFiles } from './sample/sample-item.ts';
import { readExpoLayout } from './expo-layout.ts';
import { buildExpoManifest } from './expo-manifest.ts';
import { chooseAnswer, encodeAnswer, parseExpoRequest } from './protocol.ts';

const FILE = fileURLToPath(new URL('./golden.json', import.meta.url));

function compute() {
  const files = sampleExpoFiles();
  const layout = readExpoLayout(files, ['ios', 'android']);
  const manifest = buildExpoManifest({
    itemId: 'com.example.notes.app', variant: 'fast-api', variantSha256: '0123456789abcdef'.repeat(4), platform: 'android', layout, files,
    runtimeVersion: '1.0.0', createdAt: '2026-01-01T00:00:00.000Z', assetUrl: (p) => `https://penumbra.example/api/v1/expo/com.example.notes.app/assets/${'0123456789abcdef'.repeat(4)}/${p}`, extra: { apiBase: 'https://shadow-api.example.com/v1' },
  });
  const request = parseExpoRequest({ 'expo-protocol-version': '1', 'expo-platform': 'android', 'expo-runtime-version': '1.0.0', accept: 'multipart/mixed' });
  const encode = (rolledBack: boolean, currentUpdateId?: string) => {
    const e = encodeAnswer({ answer: chooseAnswer({ rolledBack, rolledBackAt: '2026-01-02T00:00:00.000Z', manifest, currentUpdateId }), request, filters: { item: 'com.example.notes.app', variant: 'fast-api' }, serverHeaders: { 'penumbra-user-id': 'd-1' }, signingKey: null, boundary: 'penumbra-golden' });
    return { headers: e.headers, body: e.body.toString('utf8') };
  };
  return { manifest, answers: { manifest: encode(false), noUpdateAvailable: encode(false, manifest.id), rollBackToEmbedded: encode(true) } };
}

test('sample manifest and encoded answers match golden.json', () => {
  const actual = compute();
  if (process.env.UPDATE_GOLDEN === '1') writeFileSync(FILE, `${JSON.stringify(actual, null, 2)}\n`);
  expect(actual).toEqual(JSON.parse(readFileSync(FILE, 'utf8')));
});

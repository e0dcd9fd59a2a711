/**
 * `penumbra ingest <archive> [--shadow config.json]`: the CLI way in. It uploads to the API,
 * so the CLI, REST and the topic share one core (and one set of limits and checks).
 */
import { readFileSync, statSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { flag, target, problemError } from './http-client.ts';
import { ValidationError } from '../pipeline/errors.ts';

export async function ingestCli(argv: string[]): Promise<number> {
  const file = argv.find((a, i) => !a.startsWith('--') && !['--shadow', '--url', '--token', '--rollout'].includes(argv[i - 1] ?? ''));
  if (!file) throw new ValidationError('usage: penumbra ingest <archive> [--shadow config.json] [--proactive | --no-proactive] [--rollout plan.json]', [{ path: 'archive', message: 'missing' }]);
  // [#13] --proactive / --no-proactive: the new version goes out as a risk-sized shadow, or
  // replaces the current one; neither = the server's default (pipeline/version-shadows).
  const proactive = argv.includes('--no-proactive') ? 'false' : argv.includes('--proactive') ? 'true' : undefined;
  const rolloutFile = flag(argv, '--rollout');
  const rollout = rolloutFile ? readFileSync(rolloutFile, 'utf8') : undefined;
  if (rollout !== undefined) JSON.parse(rollout);
  const shadowFile = flag(argv, '--shadow');
  const shadow = shadowFile ? readFileSync(shadowFile, 'utf8') : undefined;
  if (shadow !== undefined) JSON.parse(shadow); // fail early, locally, on broken JSON
  const { url, token } = target(argv);
  const size = statSync(file).size;
  const boundary = `----penumbra${randomUUID()}`;
  const head = Buffer.from(
    (shadow !== undefined ? `--${boundary}\r\nContent-Disposition: form-data; name="shadowConfig"\r\nContent-Type: application/json\r\n\r\n${shadow}\r\n` : '') +
      (proactive !== undefined ? `--${boundary}\r\nContent-Disposition: form-data; name="proactive"\r\n\r\n${proactive}\r\n` : '') +
      (rollout !== undefined ? `--${boundary}\r\nContent-Disposition: form-data; name="rollout"\r\nContent-Type: application/json\r\n\r\n${rollout}\r\n` : '') +
      `--${boundary}\r\nContent-Disposition: form-data; name="item"; filename="${path.basename(file)}"\r\nContent-Type: application/octet-stream\r\n\r\n`,
  );
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  const body = readFileSync(file);
  const u = new URL(`${url}/api/v1/items`);
  const lib = u.protocol === 'https:' ? https : http;
  const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
    const req = lib.request(u, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': `multipart/form-data; boundary=${boundary}`, 'content-length': head.length + body.length + tail.length } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.write(head);
    // Progress for large archives: write in 1 MB slices and report percent on a TTY.
    const step = 1024 * 1024;
    let sent = 0;
    const writeNext = () => {
      while (sent < body.length) {
        const chunk = body.subarray(sent, sent + step);
        sent += chunk.length;
        if (size > 4 * step && process.stderr.isTTY) process.stderr.write(`\ruploading ${path.basename(file)}: ${Math.round((100 * sent) / size)}%`);
        if (!req.write(chunk)) return void req.once('drain', writeNext);
      }
      if (size > 4 * step && process.stderr.isTTY) process.stderr.write('\n');
      req.end(tail);
    };
    writeNext();
  });
  if (status !== 201) {
    throw await problemError(new Response(text, { status }));
  }
  const out = JSON.parse(text) as { item: { itemId: string; latestVersion: string; versions: { version: string; variants: { name: string; sha256: string; replacements: number }[] }[] }; profile: { profileVersion: number }; reports: Record<string, { totalReplacements: number; injectedPages: string[] }>; proactive?: boolean; versionShadow?: string; sizing?: string; risk?: { note: string } | null };
  if (out.proactive) {
    console.log(`sent out ${out.item.itemId} as version shadow ${out.versionShadow} of ${out.item.latestVersion} (profile v${out.profile.profileVersion})`);
    console.log(`  ${out.sizing}`);
    if (argv.includes('--json')) console.log(text);
    return 0;
  }
  const v = out.item.versions.find((x) => x.version === out.item.latestVersion)!;
  console.log(`ingested ${out.item.itemId} ${out.item.latestVersion} (profile v${out.profile.profileVersion})`);
  for (const x of v.variants) console.log(`  ${x.name.padEnd(20)} sha256 ${x.sha256}  replacements ${x.replacements}`);
  if (argv.includes('--json')) console.log(text);
  return 0;
}

/** `penumbra rollback <itemId>`: one action, then wait until every live resolver serves it. */
import { flag, target, problemError } from './http-client.ts';
import { ValidationError } from '../pipeline/errors.ts';

export async function rollbackCli(argv: string[]): Promise<number> {
  const itemId = argv.find((a, i) => !a.startsWith('--') && !['--reason', '--url', '--token'].includes(argv[i - 1] ?? ''));
  if (!itemId) throw new ValidationError('usage: penumbra rollback <itemId>', [{ path: 'itemId', message: 'missing' }]);
  const { url, token } = target(argv);
  const t0 = Date.now();
  const res = await fetch(`${url}/api/v1/items/${encodeURIComponent(itemId)}/rollback`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ reason: flag(argv, '--reason') ?? 'rollback from the CLI' }),
  });
  if (!res.ok) throw await problemError(res);
  const p = (await res.json()) as { profileVersion: number; state: string };
  console.log(`${itemId}: ${p.state} at profile version ${p.profileVersion} (${Date.now() - t0} ms)`);
  // Wait (bounded) for resolvers to report the version, when the resolver registry is available.
  for (let i = 0; i < 50; i++) {
    const r = await fetch(`${url}/api/v1/resolvers`, { headers: { authorization: `Bearer ${token}` } }).catch(() => null);
    if (!r?.ok) break;
    const { resolvers } = (await r.json()) as { resolvers: { resolverId: string; versions: Record<string, number>; stale: boolean }[] };
    const live = resolvers.filter((x) => !x.stale);
    const behind = live.filter((x) => (x.versions[itemId] ?? 0) < p.profileVersion);
    if (behind.length === 0) {
      console.log(`all ${live.length} resolver(s) serve version ${p.profileVersion} (${Date.now() - t0} ms)`);
      return 0;
    }
    await new Promise((r2) => setTimeout(r2, 100));
  }
  return 0;
}

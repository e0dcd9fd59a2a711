/**
 * `penumbra start` (= `npm start`): local stack → createPenumbra → print URL and token.
 * Ctrl-C (SIGINT) or SIGTERM stops the API and processors, then the local stack if this
 * command started it, so no Java process of ours is left behind.
 */
import { existsSync, statSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { ensureDataDir, loadConfig } from '../pipeline/config/config.ts';
import { ConfigError } from '../pipeline/errors.ts';
import { formatRoles, parseRoles, type Roles } from '../pipeline/roles/roles.ts';
import { createPenumbra, REPO_ROOT } from '../pipeline/app/penumbra.ts';
import { isStackHealthy, s3Down, s3Endpoint, s3Healthy, s3Up, stackDown, stackUp } from '../infra/stack.ts';
import { stackOptionsFor } from './stack-options.ts';
import { ensureHttpfsExtension } from '../connectors/duckdb-httpfs/fetch.ts';

function newestMtime(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.name === 'dist' || e.name === 'node_modules' || e.name === 'test') continue;
    const p = path.join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return newest;
}

/** Build the console when its sources are newer than the last build (first start included). */
export function ensureConsoleBuilt(log: (l: string) => void): string | undefined {
  const dir = path.join(REPO_ROOT, 'console');
  const dist = path.join(dir, 'dist');
  if (!existsSync(path.join(dir, 'vite.config.ts'))) return undefined;
  const built = existsSync(path.join(dist, 'index.html')) ? statSync(path.join(dist, 'index.html')).mtimeMs : 0;
  if (built >= newestMtime(dir)) return dist;
  log('Building the console (vite) …');
  const r = spawnSync(process.execPath, [path.join(REPO_ROOT, 'node_modules/vite/bin/vite.js'), 'build', '--config', path.join(dir, 'vite.config.ts'), '--logLevel', 'warn'], { cwd: REPO_ROOT, stdio: 'inherit' });
  if (r.status !== 0) {
    log('Console build failed; the API runs without it.');
    return undefined;
  }
  return dist;
}

export interface StartArgs {
  demo: boolean;
  keepStack: boolean;
  noConsole: boolean;
  /** `--role LIST` / `--role=LIST`, parsed (pipeline/roles); undefined = PENUMBRA_ROLES decides. */
  roles?: Roles;
}

/** The flags of `penumbra start` (pure: the CLI test checks the refusals). */
export function parseStartArgs(argv: string[]): StartArgs {
  const roleAt = argv.findIndex((a) => a === '--role' || a.startsWith('--role='));
  const roleText = roleAt < 0 ? undefined : argv[roleAt].startsWith('--role=') ? argv[roleAt].slice('--role='.length) : argv[roleAt + 1];
  if (roleAt >= 0 && (roleText === undefined || roleText === '' || roleText.startsWith('--'))) throw new ConfigError('--role needs a value: a comma list of api, processors, sink (or all)');
  const out: StartArgs = { demo: argv.includes('--demo'), keepStack: argv.includes('--no-stack-stop'), noConsole: argv.includes('--no-console') };
  if (roleText !== undefined) out.roles = parseRoles(roleText, '--role');
  if (out.demo && out.roles && !(out.roles.api && out.roles.processors)) throw new ConfigError('--demo needs the api and processors roles in this process');
  return out;
}

export async function startCommand(argv: string[]): Promise<number> {
  const args = parseStartArgs(argv);
  const { demo, keepStack, noConsole } = args;
  const loaded = loadConfig();
  // --role wins over PENUMBRA_ROLES (pipeline/roles).
  const cfg = args.roles ? { ...loaded, roles: args.roles } : loaded;
  if (demo && !(cfg.roles.api && cfg.roles.processors)) throw new ConfigError('--demo needs the api and processors roles in this process');
  ensureDataDir(cfg.dataDir); // 0700 before the stack writes its data into it
  const say = (l: string) => console.log(l);
  let startedStack = false;
  const stackOpts = stackOptionsFor(cfg, say);
  if (!cfg.externalCluster) {
    if (!(await isStackHealthy(stackOpts))) {
      say('Starting the local Kafka + schema registry (set KAFKA_BROKERS and SCHEMA_REGISTRY_URL to use your own) …');
      await stackUp(stackOpts);
      startedStack = true;
    } else {
      say('Using the local stack that is already running.');
    }
  }
  // Blobs or Parquet on S3 without an endpoint: the local S3Proxy (started alone if the rest runs).
  let startedS3 = false;
  if (stackOpts.s3Port !== undefined && !(await s3Healthy(stackOpts.s3Port))) {
    say(`Starting the local S3Proxy on ${s3Endpoint(stackOpts.s3Port)} (set PENUMBRA_S3_ENDPOINT to use your own object store) …`);
    await s3Up({ ...stackOpts, s3Port: stackOpts.s3Port });
    startedS3 = !startedStack;
  }
  // Reading the bucket's Parquet export: DuckDB's httpfs extension, fetched once from PyPI into
  // the cache (connectors/duckdb-httpfs), lets the readers read s3:// directly; without it (a
  // platform without a wheel, no network) they keep the synced cache (connectors/parquet-source).
  if (cfg.parquetRead === 's3') {
    try {
      const r = await ensureHttpfsExtension(cfg.cacheDir, { log: say });
      if (r.status === 'unsupported') say(`No DuckDB httpfs extension: ${r.reason}. The Parquet readers use the S3 cache (connectors/parquet-source).`);
    } catch (err) {
      say(`Could not fetch DuckDB's httpfs extension (${(err as Error).message}). The Parquet readers use the S3 cache (connectors/parquet-source); the next start tries again.`);
    }
  }
  const consoleDir = cfg.roles.api && !noConsole ? ensureConsoleBuilt(say) : undefined;
  const p = await createPenumbra(cfg, { createToken: true, consoleDir });
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    say(`\n${signal}: stopping Penumbra …`);
    await p.stop();
    if (startedStack && !keepStack) {
      say('Stopping the local stack …');
      await stackDown(stackOpts);
    } else if (startedS3 && !keepStack) {
      say('Stopping the local S3Proxy …');
      await s3Down(stackOpts);
    }
    say('Stopped.');
    process.exit(0);
  };
  // A stray rejected promise in one request or background task must not take the whole server
  // (and every device's resolve) down: log it loudly and keep serving.
  process.on('unhandledRejection', (err) => {
    process.stderr.write(`${JSON.stringify({ t: new Date().toISOString(), level: 'error', component: 'penumbra', msg: 'unhandled rejection', err: String((err as Error)?.stack ?? err) })}\n`);
  });
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  if (demo) {
    const { startDemo } = await import('./demo.ts');
    await startDemo(p, say);
  }
  const roles = formatRoles(cfg.roles);
  say('');
  say(`Penumbra is running: ${p.url}  (roles: ${roles})`);
  if (cfg.roles.api) {
    if (consoleDir) say(`  console   ${p.url}/`);
    say(`  API       ${p.url}/api/v1  (OpenAPI: ${p.url}/api/v1/openapi.json)`);
    say(`  items     ${p.contentUrl}/d/…  (item pages: their own origin, never the console's)`);
  }
  say(`  health    ${p.url}/api/v1/health`);
  // One machine-readable line for supervisors and tests that start roles as child processes.
  say(JSON.stringify({ event: 'listening', url: p.url, contentUrl: p.contentUrl || null, resolverId: p.ctx.resolverId, roles, pid: process.pid }));
  if (p.createdToken) {
    say(`  admin token (shown once, stored 0600 in ${p.createdToken.file}):`);
    say(`    ${p.createdToken.token}`);
  }
  say('Press Ctrl-C to stop.');
  await new Promise(() => {});
  return 0;
}

/**
 * `penumbra <command>`: start, stack, ingest, rollback, simulate, bench. Every command and
 * subcommand answers --help. Errors from the one hierarchy print their message (which says what
 * to do) and exit non-zero; anything else prints a stack trace.
 */
import { PenumbraError } from '../pipeline/errors.ts';

type Command = { summary: string; help: string; run: (argv: string[]) => Promise<number> };

const COMMANDS: Record<string, Command> = {
  start: {
    summary: 'start the local stack (unless KAFKA_BROKERS is set), pipeline, API and console',
    help: `Usage: penumbra start [--role api,processors,sink] [--demo] [--no-stack-stop] [--no-console]

Brings up Kafka + schema registry (local, unless KAFKA_BROKERS/SCHEMA_REGISTRY_URL are set),
provisions topics and schemas, starts the processors, the DuckDB sink, the API and the console,
and prints the URL. Creates and prints an admin token on first start when none is configured.
Ctrl-C stops everything it started (including the local stack it started).

  --role LIST       what this process runs (default all; also PENUMBRA_ROLES), comma-separated:
                      api         API, console, collector, resolver, item pages (any number)
                      processors  ingest, profile commands, metrics, alerts, rollout analyzer,
                                  risk, segments (consumer-group members; any number)
                      sink        the DuckDB warehouse sink (exactly one per warehouse)
                    e.g. --role api  /  --role processors  /  --role sink (docs/scaling.md)
  --demo            also run the simulator: a demo item with a shadow and simulated devices
  --no-stack-stop   leave the local stack running on exit
  --no-console      do not build or serve the console (API-only processes, tests)`,
    run: async (argv) => (await import('./start.ts')).startCommand(argv),
  },
  stack: {
    summary: 'manage the local Kafka + registry: up | down | status',
    help: 'Usage: penumbra stack <up|down|status> [--help]',
    run: async (argv) => (await import('./stack.ts')).stackCli(argv),
  },
  ingest: {
    summary: 'ingest an item archive (with --shadow config.json) through the API',
    help: `Usage: penumbra ingest <archive.zip|archive.tar.gz> [--shadow config.json] [--url URL] [--token TOKEN]

Uploads the archive to a running Penumbra (default http://127.0.0.1:$PORT, token from
$PENUMBRA_TOKEN or the data folder's tokens file) and prints the catalog entry and the rewrite
report. Shows upload progress for large files. Exit code 1 when the item is refused (the reason
and field paths are printed).`,
    run: async (argv) => (await import('./ingest.ts')).ingestCli(argv),
  },
  rollback: {
    summary: 'roll an item back: every user to the original, now',
    help: `Usage: penumbra rollback <itemId> [--reason TEXT] [--url URL] [--token TOKEN]

Calls POST /api/v1/items/<itemId>/rollback and waits until every resolver reports the new
profile version.`,
    run: async (argv) => (await import('./rollback.ts')).rollbackCli(argv),
  },
  simulate: {
    summary: 'act like devices: resolve, fetch the variant, send telemetry',
    help: 'Usage: penumbra simulate --items N --users N --rate N --duration S [--effect ...] (see penumbra simulate --help)',
    run: async (argv) => (await import('./simulate.ts')).simulateCli(argv),
  },
  bench: {
    summary: 'run the benchmarks and write bench/results.json',
    help: `Usage: penumbra bench [--quick] [--only NAME]

Runs every bench/*.bench.ts side by side with its peer in one run, prints a table and writes
bench/results.json ({name, unit, ours, peer, peerName, ratio}).`,
    run: async (argv) => (await import('../bench/run.ts')).benchCli(argv),
  },
};

function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((k) => k.length));
  return [
    'Usage: penumbra <command> [options]',
    '',
    'Shadow rollouts of digital items on Kafka + DuckDB.',
    '',
    ...Object.entries(COMMANDS).map(([k, c]) => `  ${k.padEnd(width)}  ${c.summary}`),
    '',
    'Run `penumbra <command> --help` for details.',
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    console.log(usage());
    return cmd ? 0 : 2;
  }
  const c = COMMANDS[cmd];
  if (!c) {
    console.error(`penumbra: unknown command "${cmd}"\n\n${usage()}`);
    return 2;
  }
  // stack and simulate print their own, longer help.
  if ((rest[0] === '--help' || rest[0] === '-h') && cmd !== 'stack' && cmd !== 'simulate') {
    console.log(c.help);
    return 0;
  }
  try {
    return await c.run(rest);
  } catch (err) {
    if (err instanceof PenumbraError) {
      console.error(`penumbra ${cmd}: ${err.message}`);
      return 1;
    }
    console.error(err);
    return 1;
  }
}

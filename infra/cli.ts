/**
 * `penumbra stack up | down | status`. Printing lives here so stack.ts stays usable from tests and
 * from `npm start` without console noise.
 */
import { ConfigError, PenumbraError } from '../pipeline/errors.ts';
import {
  KAFKA_VERSION,
  REGISTRY_VERSION,
  kafkaBrokers,
  registryUrl,
  stackDown,
  stackStatus,
  stackUp,
  type ServiceStatus,
  type StackOptions,
} from './stack.ts';

const HELP: Record<string, string> = {
  main: `Usage: penumbra stack <up|down|status> [--help]

Runs a local Apache Kafka ${KAFKA_VERSION} (KRaft, one node) and Apicurio Registry ${REGISTRY_VERSION}
(Confluent-compatible API) with this machine's Java 17+, without Docker.

  up       fetch jars on first use (Maven), start both, wait until healthy
  down     stop the processes this data dir started
  status   show pids, health, ports and log files

Data (pid files, logs, Kafka storage) lives under $PENUMBRA_DATA_DIR/stack (default ./.penumbra).
Not needed when KAFKA_BROKERS and SCHEMA_REGISTRY_URL point at an existing cluster,
or when you run \`docker compose up\`.`,
  up: `Usage: penumbra stack up

Starts Kafka and the schema registry in the background and returns once both answer.
The first run downloads about 170 MB from Maven Central into .cache/stack; later runs reuse it.
Kafka storage is formatted on the first start and kept across restarts.
Fails with advice when Java 17+ is missing, a port is taken, or Maven cannot fetch.`,
  down: `Usage: penumbra stack down

Stops the registry, then Kafka: exactly the processes recorded in this data dir's pid files
(SIGTERM, then SIGKILL after a grace period). Topics and schemas are kept.`,
  status: `Usage: penumbra stack status [--json]

Shows, per service, the pid from this data dir, whether that process runs, whether the port
answers (Kafka metadata / registry GET /subjects), and the log file.
Exit code 0 when both services are healthy, 1 otherwise.`,
};

function formatStatus(rows: ServiceStatus[]): string {
  const head = ['service', 'pid', 'running', 'healthy', 'port', 'log'];
  const body = rows.map((r) => [r.name, r.pid === null ? '-' : String(r.pid), r.running ? 'yes' : 'no', r.healthy ? 'yes' : 'no', String(r.port), r.logFile]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  return [head, ...body].map((cols) => cols.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
}

export async function stackCommand(argv: string[], opts: StackOptions): Promise<number> {
  const [sub, ...rest] = argv;
  const wantsHelp = rest.includes('--help') || rest.includes('-h');
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
    console.log(HELP.main);
    return sub === undefined ? 2 : 0;
  }
  if (!(sub in HELP) || sub === 'main') {
    console.error(`Unknown stack command "${sub}".\n\n${HELP.main}`);
    return 2;
  }
  if (wantsHelp) {
    console.log(HELP[sub]);
    return 0;
  }
  const unknown = rest.filter((a) => !(sub === 'status' && a === '--json'));
  if (unknown.length) {
    console.error(`Unexpected argument(s) for "stack ${sub}": ${unknown.join(' ')}\n\n${HELP[sub]}`);
    return 2;
  }
  const withLog: StackOptions = { ...opts, log: opts.log ?? ((l) => console.log(l)) };
  try {
    if (sub === 'up') {
      const rows = await stackUp(withLog);
      console.log(`\n${formatStatus(rows)}\n`);
      console.log(`Stack is up. Use it with:\n  KAFKA_BROKERS=${kafkaBrokers(opts)}\n  SCHEMA_REGISTRY_URL=${registryUrl(opts)}`);
      console.log('Stop it with `penumbra stack down`.');
      return 0;
    }
    if (sub === 'down') {
      await stackDown(withLog);
      return 0;
    }
    const rows = await stackStatus(opts);
    if (rest.includes('--json')) console.log(JSON.stringify(rows, null, 2));
    else console.log(formatStatus(rows));
    return rows.every((r) => r.healthy) ? 0 : 1;
  } catch (err) {
    if (err instanceof PenumbraError) {
      console.error(`\nstack ${sub} failed: ${err.message}`);
      return err instanceof ConfigError ? 78 : 69;
    }
    throw err;
  }
}

/**
 * The peers the consuming benches compare against, run as a process of their own (so they share
 * neither our event loop nor our heap): a plain kafkajs consumer of one topic, from the beginning
 * in a fresh group, that either
 *  - `count`: only counts messages (no decode, no storage) — the raw consumption ceiling; or
 *  - `decode`: decodes every value from the Confluent wire format with avsc (writer schema fetched
 *    once per schema id from the registry, then `Type.fromBuffer` on the body — what any decoding
 *    consumer must do at least) and discards the result.
 * The clock starts when the consumer-group join completes (the broker's initial rebalance delay is
 * excluded) and stops when `n` messages are consumed. Prints one JSON line `{ mode, n, rate, ms }`.
 *
 *   node --import tsx bench/peer-consume.ts --mode decode --topic T --n 200000 [--brokers …] [--registry …]
 *
 * `peerConsume()` spawns it and returns the parsed line.
 */
import { randomUUID } from 'node:crypto';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import avro from 'avsc';
import { childJson } from './child-json.ts';
import kafkajs from 'kafkajs';

export type PeerMode = 'count' | 'decode';

export interface PeerResult {
  mode: PeerMode;
  n: number;
  /** Messages per second from the group join to the n-th message. */
  rate: number;
  ms: number;
  /** CPU time of the whole process (all threads) over the same span, ms — reported, not used by the peer. */
  cpuMs: number;
}

const SELF = fileURLToPath(import.meta.url);

/** Run the peer in a child process and wait for its result (rejects on a non-zero exit or a timeout). */
export function peerConsume(opts: { mode: PeerMode; topic: string; n: number; brokers: string[]; registry: string; timeoutMs?: number }): Promise<PeerResult> {
  const args = ['--import', 'tsx', SELF, '--mode', opts.mode, '--topic', opts.topic, '--n', String(opts.n), '--brokers', opts.brokers.join(','), '--registry', opts.registry];
  return childJson<PeerResult>(`peer ${opts.mode} consumer`, args, opts.timeoutMs ?? 180_000);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      mode: { type: 'string', default: 'count' },
      topic: { type: 'string' },
      n: { type: 'string' },
      brokers: { type: 'string', default: '127.0.0.1:9092' },
      registry: { type: 'string', default: 'http://127.0.0.1:8081/apis/ccompat/v7' },
    },
  });
  const mode = values.mode as PeerMode;
  if (mode !== 'count' && mode !== 'decode') throw new Error(`--mode must be count or decode, not ${mode}`);
  if (!values.topic || !values.n) throw new Error('--topic and --n are required');
  const topic = values.topic;
  const n = Number(values.n);
  const kafka = new kafkajs.Kafka({ brokers: values.brokers!.split(','), clientId: `bench-peer-${mode}`, logLevel: kafkajs.logLevel.NOTHING });
  // Same fetch sizes as the warehouse sink, so both get the same batches from the broker.
  const consumer = kafka.consumer({ groupId: `bench-peer-${mode}-${randomUUID()}`, maxWaitTimeInMs: 200, maxBytesPerPartition: 4 * 1024 * 1024, maxBytes: 32 * 1024 * 1024 });
  const types = new Map<number, avro.Type>();
  const typeFor = async (id: number): Promise<avro.Type> => {
    let t = types.get(id);
    if (!t) {
      const res = await fetch(`${values.registry}/schemas/ids/${id}`);
      if (!res.ok) throw new Error(`registry answered ${res.status} for schema id ${id}`);
      t = avro.Type.forSchema(JSON.parse(((await res.json()) as { schema: string }).schema) as avro.Schema);
      types.set(id, t);
    }
    return t;
  };
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  let count = 0;
  let joined = 0;
  let sink = 0; // keeps decoded values observable so the decode cannot be optimised away
  let cpuAtJoin = 0;
  let cpuAtEnd = 0;
  const cpuNow = (): number => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1000;
  };
  consumer.on(consumer.events.GROUP_JOIN, () => {
    joined = performance.now();
    cpuAtJoin = cpuNow();
  });
  const elapsed = await new Promise<number>((resolve, reject) => {
    void consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        if (mode === 'decode') {
          try {
            for (const m of batch.messages) {
              const v = m.value!;
              const type = types.get(v.readInt32BE(1)) ?? (await typeFor(v.readInt32BE(1)));
              const rec = type.fromBuffer(v.subarray(5)) as { id?: string };
              sink += rec.id?.length ?? 1;
            }
          } catch (err) {
            reject(err as Error);
          }
        }
        count += batch.messages.length;
        if (count >= n) {
          cpuAtEnd = cpuNow();
          resolve(performance.now() - joined);
        }
      },
    });
  });
  await consumer.disconnect();
  if (sink < 0) throw new Error('unreachable');
  process.stdout.write(`${JSON.stringify({ mode, n, rate: (n / elapsed) * 1000, ms: elapsed, cpuMs: Math.round(cpuAtEnd - cpuAtJoin) } satisfies PeerResult)}\n`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().then(
    () => process.exit(0),
    (err: Error) => {
      process.stderr.write(`${err.stack ?? err}\n`);
      process.exit(1);
    },
  );
}

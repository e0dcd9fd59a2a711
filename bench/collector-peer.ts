/**
 * The raw limit of the collector bench (bench/collector.bench.ts), run as a process of its own:
 * a bare node:http handler that reads the same POST body, JSON-parses it and produces every event
 * unchanged (its JSON, keyed by the batch's sessionId) with kafkajs — default producer, acks=all
 * like ours — then answers 202 `{"accepted": n}` after the broker's ack, 503 if it did not ack.
 * No validation, no token, no Avro, no framework: what any collector that keeps the
 * 202-after-ack promise must do at least. This producer is not idempotent, so kafkajs sends
 * concurrent requests in parallel (ours is idempotent: one request in flight).
 *  - `--mode request`: one produce request per HTTP request (the literal bare handler);
 *  - `--mode coalesce`: the events of concurrent HTTP requests share one produce request (flushed
 *    after 2 ms or at 5,000 events — ours's linger and cap), each request answered after the ack
 *    of the request that carried its events: the same trick ours uses, without anything else.
 *
 *   node --import tsx bench/collector-peer.ts --topic T --mode request|coalesce [--brokers 127.0.0.1:9092]
 *
 * Prints `{"url": …}` when listening.
 */
import http from 'node:http';
import { parseArgs } from 'node:util';
import kafkajs from 'kafkajs';

const { values } = parseArgs({ options: { topic: { type: 'string' }, mode: { type: 'string', default: 'request' }, brokers: { type: 'string', default: '127.0.0.1:9092' } } });
const topic = values.topic!;
const coalesce = values.mode === 'coalesce';
if (!coalesce && values.mode !== 'request') throw new Error(`--mode must be request or coalesce, not ${values.mode}`);
const kafka = new kafkajs.Kafka({ brokers: values.brokers!.split(','), clientId: 'bench-collector-peer', logLevel: kafkajs.logLevel.NOTHING });
const producer = kafka.producer({ createPartitioner: kafkajs.Partitioners.DefaultPartitioner });
await producer.connect();

type Message = { key: string; value: string };
let queue: { messages: Message[]; done: (ok: boolean) => void }[] = [];
let queued = 0;
let timer: NodeJS.Timeout | null = null;
function flush(): void {
  if (timer) clearTimeout(timer);
  timer = null;
  const batch = queue;
  queue = [];
  queued = 0;
  producer.send({ topic, acks: -1, messages: batch.flatMap((b) => b.messages) }).then(
    () => batch.forEach((b) => b.done(true)),
    () => batch.forEach((b) => b.done(false)),
  );
}
function produce(messages: Message[], done: (ok: boolean) => void): void {
  if (!coalesce) {
    producer.send({ topic, acks: -1, messages }).then(() => done(true), () => done(false));
    return;
  }
  queue.push({ messages, done });
  queued += messages.length;
  if (queued >= 5000) flush();
  else timer ??= setTimeout(flush, 2);
}

const server = http.createServer((req, res) => {
  if (req.method !== 'POST' || req.url !== '/api/v1/telemetry') {
    res.writeHead(404).end();
    return;
  }
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    let batch: { sessionId: string; events: unknown[] };
    try {
      batch = JSON.parse(Buffer.concat(chunks).toString('utf8')) as typeof batch;
    } catch {
      res.writeHead(400).end();
      return;
    }
    produce(batch.events.map((e) => ({ key: batch.sessionId, value: JSON.stringify(e) })), (ok) => {
      if (!ok) return void res.writeHead(503).end();
      res.writeHead(202, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ accepted: batch.events.length }));
    });
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as { port: number };
  process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${port}` })}\n`);
});
process.once('SIGTERM', () => {
  server.close();
  void producer.disconnect().finally(() => process.exit(0));
});

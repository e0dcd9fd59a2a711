/**
 * Produces the assignment log's batches (pipeline/resolver/assignment-log.ts) from a worker
 * thread (exposure-producer.worker.mjs), so the resolver's event loop does not run kafkajs.
 *
 * Why (issue 15 item 3, resolve p99): in the resolve bench's CPU profile, kafkajs's produce work
 * for the exposures — partitioning, record-batch encoding, CRC, its per-partition regrouping
 * that copies an array per message — was ~20 % of the resolver thread's busy time, and each
 * 500-record batch ran as one synchronous stretch between answers: a tail-latency stall. Here
 * the event loop only Avro-encodes the batch (a few µs per record, as before) into one
 * transferable buffer and posts it; the worker owns an idempotent kafkajs producer (acks=all).
 *
 * Contract (the same as the in-thread producer it replaces): `send(batch)` resolves once the
 * broker acknowledged every record of the batch, and rejects otherwise. The AssignmentLog keeps
 * the batch (and retries it with backoff) until then, so a worker that dies, fails or is slow
 * loses nothing: its pending batch is rejected, and the next send starts a fresh worker.
 */
import { Worker } from 'node:worker_threads';
import type { Assignment } from '../../schemas/types.generated.ts';
import type { AvroCodec } from '../kafka/registry.ts';
import { UnavailableError } from '../errors.ts';

const WORKER_URL = new URL('./exposure-producer.worker.mjs', import.meta.url);

interface Pending {
  resolve: () => void;
  reject: (e: unknown) => void;
}

export class ExposureProducer {
  private worker: Worker | null = null;
  private seq = 0;
  private readonly pending = new Map<number, Pending>();
  private stopping: Promise<void> | null = null;
  /** Workers started (1 while healthy; more after a worker died). */
  started = 0;

  /** The current worker thread, if one runs (tests end it to check that nothing is lost). */
  get thread(): Worker | null {
    return this.worker;
  }

  constructor(private readonly opts: { brokers: string[]; clientId: string; codec: Pick<AvroCodec, 'encodeView'>; topic: string }) {}

  /** Never throws: every failure (no schema id yet before provisioning, worker gone) rejects. */
  async send(batch: Assignment[]): Promise<void> {
    if (batch.length === 0) return;
    if (this.stopping) throw new UnavailableError('exposure producer stopped');
    // Encode here (the codec holds the registry's schema ids): key (UTF-8 userId, the bytes
    // kafkajs's partitioner hashes for a string key too) and framed value of each record back to
    // back in one buffer whose memory moves to the worker without a copy — no per-record object
    // or string crosses the thread boundary.
    const n = batch.length;
    const views = new Array<Buffer>(n);
    let total = 0;
    for (let i = 0; i < n; i++) {
      const v = this.opts.codec.encodeView(this.opts.topic, batch[i] as never);
      views[i] = v;
      total += v.length + batch[i].userId.length * 3; // a UTF-16 unit is at most 3 UTF-8 bytes
    }
    const bytes = Buffer.from(new ArrayBuffer(total));
    // ends[2i] = end of record i's key, ends[2i+1] = end of its value.
    const ends = new Uint32Array(2 * n);
    let at = 0;
    for (let i = 0; i < n; i++) {
      at += bytes.write(batch[i].userId, at, 'utf8');
      ends[2 * i] = at;
      at += views[i].copy(bytes, at);
      ends[2 * i + 1] = at;
    }
    const seq = ++this.seq;
    const w = this.ensureWorker();
    return new Promise<void>((resolve, reject) => {
      this.pending.set(seq, { resolve, reject });
      w.postMessage({ type: 'send', seq, topic: this.opts.topic, bytes, ends }, [bytes.buffer, ends.buffer]);
    });
  }

  private ensureWorker(): Worker {
    if (this.worker) return this.worker;
    const w = new Worker(WORKER_URL, { workerData: { brokers: this.opts.brokers, clientId: this.opts.clientId } });
    this.started++;
    // A worker must not keep a process alive that is otherwise done (tests, CLI commands).
    w.unref();
    w.on('message', (m: { type: string; seq?: number; error?: string }) => {
      const p = m.seq === undefined ? undefined : this.pending.get(m.seq);
      if (!p) return;
      this.pending.delete(m.seq!);
      if (m.type === 'ack') p.resolve();
      else p.reject(new UnavailableError(`Kafka did not acknowledge the exposure batch: ${m.error}`));
    });
    const gone = (why: string) => {
      if (this.worker !== w) return;
      this.worker = null;
      this.failAll(new UnavailableError(`exposure producer worker ${why}`));
    };
    w.on('error', (err) => gone(`failed: ${err.message}`));
    w.on('exit', (code) => gone(`exited (${code})`));
    this.worker = w;
    return w;
  }

  private failAll(err: Error): void {
    const all = [...this.pending.values()];
    this.pending.clear();
    for (const p of all) p.reject(err);
  }

  /** Disconnects the worker's producer and ends the worker (after the batch in flight settled). */
  stop(timeoutMs = 3000): Promise<void> {
    this.stopping ??= (async () => {
      const w = this.worker;
      if (!w) return;
      const stopped = new Promise<void>((r) => {
        w.on('message', (m: { type: string }) => m.type === 'stopped' && r());
        w.once('exit', () => r());
      });
      w.postMessage({ type: 'stop' });
      await Promise.race([stopped, new Promise((r) => setTimeout(r, timeoutMs).unref())]);
      this.worker = null;
      await w.terminate();
      this.failAll(new UnavailableError('exposure producer stopped'));
    })();
    return this.stopping;
  }
}

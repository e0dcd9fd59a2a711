/**
 * Kafka client factory and the Avro producer.
 *
 * The producer is idempotent (enable.idempotence semantics in kafkajs: acks=all, one in-flight
 * request) so a retried send after a lost ack never duplicates a record. `send` resolves only
 * after the broker acknowledged: the collector's 202 depends on that.
 */
// First: both replace kafkajs internals through the CommonJS cache before kafkajs loads.
import './kafkajs-grouping.ts';
import './kafkajs-encoding.ts';
import './kafkajs-idle-timer.ts';
import { Kafka, logLevel, Partitioners, type Producer, type IHeaders } from 'kafkajs';
import type { SchemaName } from '../../schemas/index.ts';
import type { SchemaTypes } from '../../schemas/types.generated.ts';
import type { AvroCodec } from './registry.ts';
import { UnavailableError } from '../errors.ts';

export function createKafka(brokers: string[], clientId: string, opts: { retries?: number; connectionTimeoutMs?: number } = {}): Kafka {
  return new Kafka({
    brokers,
    clientId,
    logLevel: process.env.PENUMBRA_KAFKAJS_DEBUG ? logLevel.DEBUG : logLevel.NOTHING,
    retry: { retries: opts.retries ?? 8, initialRetryTime: 100, maxRetryTime: 3000 },
    connectionTimeout: opts.connectionTimeoutMs ?? 3000,
  });
}

/**
 * A client for questions that must be answered quickly or not at all (health, lag, start-up
 * check: pipeline/kafka/probe.ts). kafkajs applies the client's retry policy to connecting the
 * cluster, whatever retry an admin client is given, so bounded questions need their own client.
 */
export function createProbeKafka(brokers: string[], clientId: string): Kafka {
  return createKafka(brokers, `${clientId}-probe`, { retries: 0, connectionTimeoutMs: 1000 });
}

export interface OutRecord<N extends SchemaName = SchemaName> {
  topic: string;
  key: string | null;
  value: SchemaTypes[N];
  headers?: IHeaders;
  /** Explicit partition (else the default partitioner on the key): the collector partitions telemetry.raw by item while keying by session. */
  partition?: number;
}

export class AvroProducer {
  producer: Producer;
  private connected = false;
  private readonly make: () => Producer;
  /** Producers replaced after a failed send (see send). */
  replaced = 0;
  constructor(kafka: Kafka, readonly codec: AvroCodec, opts: { transactionalId?: string } = {}) {
    this.make = () =>
      kafka.producer({
        idempotent: true,
        maxInFlightRequests: 1,
        createPartitioner: Partitioners.DefaultPartitioner,
        transactionalId: opts.transactionalId,
      });
    this.producer = this.make();
  }

  async connect(): Promise<void> {
    if (!this.connected) {
      await this.producer.connect();
      this.connected = true;
    }
  }

  /** Encode and send; groups records per topic in one request. Resolves after broker acks. */
  async send(records: OutRecord[]): Promise<void> {
    if (records.length === 0) return;
    const byTopic = new Map<string, { key: string | null; value: Buffer; headers?: IHeaders; partition?: number }[]>();
    for (const r of records) {
      let list = byTopic.get(r.topic);
      if (!list) byTopic.set(r.topic, (list = []));
      list.push({ key: r.key, value: this.codec.encodeView(r.topic, r.value as never), headers: r.headers, partition: r.partition });
    }
    try {
      await this.connect();
      await this.producer.sendBatch({
        acks: -1,
        topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })),
      });
    } catch (err) {
      this.replaceProducer();
      throw new UnavailableError(`Kafka did not acknowledge ${records.length} record(s): ${(err as Error).message}`, err);
    }
  }

  /**
   * After a failed send the broker may still have stored the batch. kafkajs then rolls the
   * partition's sequence number back, and its next batch of the same size would reuse the stored
   * batch's sequence numbers: the broker takes it for a retry, acknowledges it and drops it — an
   * ack for records that are nowhere (test/faults/lost-ack.int.test.ts). A fresh producer gets a
   * fresh producer id and sequence space, so no later send can be mistaken for the lost one.
   */
  private replaceProducer(): void {
    const old = this.producer;
    this.producer = this.make();
    this.connected = false;
    this.replaced++;
    void old.disconnect().catch(() => {});
  }

  /** Send already-framed bytes (used for dead letters of raw input). */
  async sendRaw(topic: string, messages: { key: string | null; value: Buffer | null }[]): Promise<void> {
    try {
      await this.connect();
      await this.producer.send({ topic, acks: -1, messages });
    } catch (err) {
      this.replaceProducer();
      throw err;
    }
  }

  async disconnect(): Promise<void> {
    if (this.connected) {
      this.connected = false;
      await this.producer.disconnect();
    }
  }
}

/**
 * Coalesces concurrent sends into one produce request: callers queue their records and each
 * gets a promise that settles when the broker acknowledged the request that carried them.
 * Flushes after `lingerMs` or when `maxRecords` are queued. Why: the collector answers many
 * small concurrent batches, and kafkajs's per-request overhead (encoding, round trip, acks=all)
 * dominated; one request for many HTTP batches keeps the 202-after-ack promise and multiplies
 * throughput. A failed request fails every caller in it (each answers 503; ids make retries safe).
 *
 * At most `maxInFlight` (1) requests are in flight: the idempotent producer holds one request
 * per broker anyway (kafkajs's broker lock), so a second request would only wait for the first —
 * instead, what arrives meanwhile stays queued and leaves as ONE request the moment the ack comes
 * (no linger then). Under load the requests grow by themselves (issue 15: the profile showed a
 * queue of small requests, each paying the produce encoding and a round trip); a request carries
 * at most `maxRecords` records of whole callers (the rest goes next), so no record batch nears
 * the broker's message.max.bytes.
 */
export class CoalescingSender {
  private queue: { records: OutRecord[]; at: number; resolve: () => void; reject: (e: unknown) => void }[] = [];
  private queued = 0;
  private timer: NodeJS.Timeout | null = null;
  /** Produce requests sent and not yet answered by the broker, oldest first (insertion order). */
  private readonly inFlight = new Set<{ batches: number; records: number; at: number }>();

  constructor(
    private readonly producer: AvroProducer,
    private readonly opts: {
      lingerMs?: number;
      maxRecords?: number;
      /** Produce requests in flight at once (default 1: see the class comment). */
      maxInFlight?: number;
      /** Told of every produce request's outcome (the collector's health: pipeline/collector-health). */
      observer?: { acknowledged(now: number): void; failed(now: number, reason: string): void };
    } = {},
  ) {}

  send(records: OutRecord[]): Promise<void> {
    if (records.length === 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ records, at: Date.now(), resolve, reject });
      this.queued += records.length;
      if (this.queued >= (this.opts.maxRecords ?? 5000)) this.flush();
      else this.timer ??= setTimeout(() => this.flush(), this.opts.lingerMs ?? 2);
    });
  }

  /** Callers still waiting for an acknowledgement: queued for the linger timer or in a request in flight. */
  pending(): { batches: number; records: number; oldestAt: number | null } {
    let batches = this.queue.length;
    let records = this.queued;
    let oldestAt: number | null = this.queue[0]?.at ?? null;
    for (const f of this.inFlight) {
      batches += f.batches;
      records += f.records;
      oldestAt = Math.min(oldestAt ?? f.at, f.at);
    }
    return { batches, records, oldestAt };
  }

  private flush(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    // Sent when the request in flight is acknowledged (or failed): see settled().
    if (this.queue.length === 0 || this.inFlight.size >= (this.opts.maxInFlight ?? 1)) return;
    const max = this.opts.maxRecords ?? 5000;
    let take = 0;
    let records = 0;
    while (take < this.queue.length && (take === 0 || records + this.queue[take].records.length <= max)) records += this.queue[take++].records.length;
    const batch = this.queue.splice(0, take);
    this.queued -= records;
    const all: OutRecord[] = [];
    for (const b of batch) for (const r of b.records) all.push(r);
    const flight = { batches: batch.length, records: all.length, at: batch[0].at };
    this.inFlight.add(flight);
    this.producer.send(all).then(
      () => {
        this.inFlight.delete(flight);
        this.opts.observer?.acknowledged(Date.now());
        for (const b of batch) b.resolve();
        this.flush();
      },
      (err) => {
        this.inFlight.delete(flight);
        this.opts.observer?.failed(Date.now(), (err as Error)?.message ?? String(err));
        for (const b of batch) b.reject(err);
        this.flush();
      },
    );
  }
}

/**
 * The exposure producer's worker thread (pipeline/resolver/exposure-producer.ts): owns one
 * kafkajs idempotent producer and sends the already Avro-framed exposure batches the resolver's
 * event loop hands it, so kafkajs's per-record produce work (partitioning, record-batch encoding,
 * CRC, its per-partition regrouping) runs on another thread than the resolve answers.
 *
 * Plain JavaScript on purpose: a worker thread inherits neither tsx's loader (registered by
 * bin/penumbra.js on the main thread only) nor jest's transform, and this file imports nothing
 * of ours but kafkajs and the plain-JS request-timeout sweep (pipeline/kafka/kafkajs-timeout-sweep.cjs).
 *
 * Protocol (one batch at a time; the main side never sends the next before this one settled):
 *   in:  {type: 'send', seq, topic, bytes: Uint8Array, ends: Uint32Array} — record i's key
 *        (UTF-8) is bytes[ends[2i-1] .. ends[2i]], its framed Avro value bytes[ends[2i] ..
 *        ends[2i+1]] (ends[-1] = 0); {type: 'stop'}
 *   out: {type: 'ack', seq} once the broker acknowledged (acks=all); {type: 'fail', seq, error};
 *        {type: 'stopped'} after the producer disconnected.
 */
import { createRequire } from 'node:module';
import { parentPort, workerData } from 'node:worker_threads';

const require = createRequire(import.meta.url);
const { Kafka, logLevel, Partitioners } = require('kafkajs');

// The idle 1 ms timer guard of pipeline/kafka/kafkajs-idle-timer.ts (see its comment): that
// module is TypeScript and loads on the main thread only, and every thread has its own copy of
// kafkajs's modules, so the same three-line guard is applied to this thread's copy.
const RequestQueue = require('kafkajs/src/network/requestQueue/index.js');
const proto = RequestQueue.prototype;
if (typeof proto.scheduleCheckPendingRequests === 'function' && !proto.__penumbraIdleGuard) {
  const original = proto.scheduleCheckPendingRequests;
  proto.scheduleCheckPendingRequests = function guarded() {
    if (this.pending.length === 0 && !(this.throttledUntil > Date.now())) return;
    original.call(this);
  };
  proto.__penumbraIdleGuard = true;
}
// And the shared request-timeout sweep (plain CommonJS, so this thread loads it as is).
require('../kafka/kafkajs-timeout-sweep.cjs').install(RequestQueue);

const { brokers, clientId } = workerData;
// Same client settings as pipeline/kafka/client.ts createKafka.
const kafka = new Kafka({ brokers, clientId, logLevel: logLevel.NOTHING, retry: { retries: 8, initialRetryTime: 100, maxRetryTime: 3000 }, connectionTimeout: 3000 });
const make = () => kafka.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner });
let producer = make();
let connected = false;

async function send(m) {
  const n = m.ends.length / 2;
  const messages = new Array(n);
  const bytes = Buffer.from(m.bytes.buffer, m.bytes.byteOffset, m.bytes.byteLength);
  let start = 0;
  for (let i = 0; i < n; i++) {
    const keyEnd = m.ends[2 * i];
    const end = m.ends[2 * i + 1];
    messages[i] = { key: bytes.subarray(start, keyEnd), value: bytes.subarray(keyEnd, end) };
    start = end;
  }
  try {
    if (!connected) {
      await producer.connect();
      connected = true;
    }
    await producer.sendBatch({ acks: -1, topicMessages: [{ topic: m.topic, messages }] });
    parentPort.postMessage({ type: 'ack', seq: m.seq });
  } catch (err) {
    // As AvroProducer.replaceProducer: after a failed send the broker may still hold the batch,
    // and a later batch reusing its sequence numbers would be acknowledged and dropped; a fresh
    // producer id cannot be mistaken for the lost one.
    const old = producer;
    producer = make();
    connected = false;
    void old.disconnect().catch(() => {});
    parentPort.postMessage({ type: 'fail', seq: m.seq, error: err instanceof Error ? err.message : String(err) });
  }
}

let chain = Promise.resolve();
parentPort.on('message', (m) => {
  if (m.type === 'send') chain = chain.then(() => send(m));
  else if (m.type === 'stop') {
    chain = chain.then(async () => {
      if (connected) await producer.disconnect().catch(() => {});
      connected = false;
      parentPort.postMessage({ type: 'stopped' });
    });
  }
});

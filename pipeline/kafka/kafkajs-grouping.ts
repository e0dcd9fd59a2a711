/**
 * Makes kafkajs's per-partition grouping of a produce request linear (kafkajs 2.2.4, unfixed
 * upstream): `src/producer/groupMessagesPerPartition.js` reduces the request's messages with
 * `Object.assign(result, { [partition]: [...current, message] })`, copying the partition's whole
 * array (and allocating a fresh object) for every message — quadratic in the messages per
 * partition. The collector's coalesced requests carry up to 5,000 records over 3 partitions, so
 * one request paid ≈ 4 M element copies; it showed in the collector's profile (issue 15,
 * docs/scaling.md "Collector").
 *
 * How, without touching node_modules: `sendMessages.js` requires the grouping module once, when
 * kafkajs loads, and keeps the function it got. So this module puts a linear function with the
 * same contract (an object partition → messages in their original order; `{}` without partition
 * metadata; the partitioner asked once per message, in order) into the CommonJS cache entry of
 * that module BEFORE kafkajs loads — it is the first import of pipeline/kafka/client.ts, through
 * which every Kafka client of Penumbra is made. If kafkajs was already loaded (an import order
 * this file cannot control), nothing changes: `kafkajsGroupingLinear` says which case holds, and
 * kafkajs-grouping.test.ts compares the two functions on seeded inputs.
 */
import { createRequire } from 'node:module';

type Partitioner = (args: { topic: string; partitionMetadata: unknown[]; message: unknown }) => number;
type Group = (args: { topic: string; partitionMetadata: unknown[]; messages: unknown[]; partitioner: Partitioner }) => Record<number, unknown[]>;

/** The same answer as kafkajs's groupMessagesPerPartition, in one pass. */
export const groupLinear: Group = ({ topic, partitionMetadata, messages, partitioner }) => {
  const result: Record<number, unknown[]> = {};
  if (partitionMetadata.length === 0) return result;
  for (const message of messages) {
    const partition = partitioner({ topic, partitionMetadata, message });
    const list = result[partition];
    if (list) list.push(message);
    else result[partition] = [message];
  }
  return result;
};

const require = createRequire(import.meta.url);
const groupPath = require.resolve('kafkajs/src/producer/groupMessagesPerPartition.js');
const sendPath = require.resolve('kafkajs/src/producer/sendMessages.js');

/** kafkajs's own function (tests compare against it). */
export const groupOriginal = require(groupPath) as Group;

let installed = false;
if (require.cache[sendPath] === undefined) {
  const entry = require.cache[groupPath];
  if (entry) {
    entry.exports = groupLinear;
    installed = true;
  }
} else {
  // kafkajs's sendMessages already holds the original: report it, change nothing.
  installed = (require(sendPath) as { __penumbraLinear?: boolean }).__penumbraLinear === true;
}
if (installed) {
  // Mark the module that captured the linear function, so a second copy of this file (tests
  // importing it again) reports the truth.
  const send = require(sendPath) as { __penumbraLinear?: boolean };
  send.__penumbraLinear = true;
}

/** True when kafkajs's produce path groups with `groupLinear`. */
export const kafkajsGroupingLinear = installed;

/**
 * Child process of bench/segments.bench.ts: builds ONE representation of a segment's membership
 * from the records a resolver replays (penumbra.segments.memberships: one record per user) and
 * prints `{ bytes, lookupsPerSec, members, wrong }` as one JSON line.
 *
 *   node --expose-gc --import tsx bench/segments-memory.ts ours|set <members> <rounds>
 *
 * `ours`: pipeline/segments SegmentIndex (53-bit keys in a sorted Float64Array, 8 B/member).
 * `set`:  the straightforward representation, a Set<string> of the user ids.
 * Bytes = heapUsed + arrayBuffers after GC, minus the same before building (the ids are
 * generated per record, as they arrive from Kafka, so only what the representation keeps counts).
 */
import { SegmentIndex } from '../pipeline/segments/segment-index.ts';

const [mode, membersArg, roundsArg] = process.argv.slice(2);
const members = Number(membersArg);
const rounds = Number(roundsArg ?? 5);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with --expose-gc');
// Flat strings, as Kafka decoding produces (template literals make ropes).
const id = (i: number): string => Buffer.from(`user-${(i * 2654435761) % 4294967296}-${i}`, 'utf8').toString('utf8');
const used = () => {
  gc();
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
};

const before = used();
let has: (userId: string) => boolean;
let keep: unknown;
if (mode === 'ours') {
  const idx = new SegmentIndex();
  idx.applyStatus({
    segmentId: 'bench', state: 'ok', evaluationId: 'e', evaluatedAt: 0, durationMs: 0, snapshotAt: null, members, candidateMembers: members,
    added: members, removed: 0, lastGoodEvaluationId: 'e', lastGoodAt: 0, error: null, definitionUpdatedAt: 0,
  });
  const segs = ['bench'];
  for (let i = 0; i < members; i++) idx.applyMembership({ userId: id(i), segments: segs, evaluationId: 'e', changed: segs, updatedAt: 0 });
  idx.markReady();
  has = (u) => idx.membership('bench', u) === 1;
  keep = idx;
} else if (mode === 'set') {
  const set = new Set<string>();
  for (let i = 0; i < members; i++) set.add(id(i));
  has = (u) => set.has(u);
  keep = set;
} else throw new Error(`unknown mode ${mode}`);
const bytes = used() - before;

// Probes: half members, half not (ids past the member range), shuffled deterministically.
const probes: string[] = [];
for (let i = 0; i < 200_000; i++) probes.push(i % 2 === 0 ? id((i * 7919) % members) : id(members + i));
let wrong = 0;
for (let i = 0; i < probes.length; i++) if (has(probes[i]) !== (i % 2 === 0)) wrong++;
const rates: number[] = [];
for (let r = 0; r < rounds; r++) {
  let hits = 0;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < probes.length; i++) if (has(probes[i])) hits++;
  const ns = Number(process.hrtime.bigint() - t0);
  if (hits !== probes.length / 2 - wrong) throw new Error('lookups disagree between rounds');
  rates.push(probes.length / (ns / 1e9));
}
rates.sort((a, b) => a - b);
void keep;
process.stdout.write(`${JSON.stringify({ mode, members, bytes, lookupsPerSec: rates[Math.floor(rates.length / 2)], wrong })}\n`);

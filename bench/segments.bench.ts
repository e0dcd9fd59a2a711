/**
 * Segment memberships in a resolver (issue 14): what a segment rule costs a decision, the memory every resolver spends holding a
 * segment of 1,000,000 members (`--quick`: 200,000), and membership lookups per second — ours
 * (pipeline/segments: 53-bit keys in a sorted Float64Array with a directory of slots) vs the straightforward
 * representation, a Set<string> of the user ids.
 *
 * Workload: one segment, members built from the records a resolver replays from
 * penumbra.segments.memberships (one per user, ids generated as they arrive); lookups: 200,000
 * probes, half members, half not. Each contender runs in its own child process
 * (bench/segments-memory.ts, `--expose-gc`), three times, interleaved; the medians are published.
 * A run whose lookups are wrong (a member reported absent, or more false positives than the
 * 53-bit key allows) fails the benchmark.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { falsePositiveRate } from '../pipeline/segments/member-hash.ts';
import { SegmentIndex } from '../pipeline/segments/segment-index.ts';
import { compileProfile, trafficSplit } from '../pipeline/traffic-split/traffic-split.ts';
import type { ShadowProfile, TrafficRule, UserContext } from '../pipeline/domain/types.ts';
import type { BenchOptions, BenchResult } from './types.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));

interface ChildResult {
  mode: string;
  members: number;
  bytes: number;
  lookupsPerSec: number;
  wrong: number;
}

function runChild(mode: 'ours' | 'set', members: number): ChildResult {
  const r = spawnSync(process.execPath, ['--expose-gc', '--max-old-space-size=2048', '--import', 'tsx', path.join(HERE, 'segments-memory.ts'), mode, String(members), '5'], {
    cwd: path.join(HERE, '..'), encoding: 'utf8', timeout: 300_000,
  });
  if (r.status !== 0) throw new Error(`segments-memory ${mode} failed (${r.status ?? r.signal}): ${r.stderr.slice(-2000)}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as ChildResult;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/**
 * What a segment rule costs a resolve: the same 20 % rollout targeted by `segment in [power]`
 * (a 100,000-member segment of 1,000,000 users in a SegmentIndex) vs by `userGroup in [power]`
 * (the same users carrying the group as an attribute) — the cheapest rule there is, so the
 * ratio is the segment lookup's overhead. Interleaved rounds, medians.
 */
function segmentRuleCost(quick: boolean): BenchResult {
  const n = quick ? 100_000 : 400_000;
  const idx = new SegmentIndex();
  idx.applyStatus({
    segmentId: 'power', state: 'ok', evaluationId: 'e', evaluatedAt: 0, durationMs: 0, snapshotAt: null, members: 0, candidateMembers: 0,
    added: 0, removed: 0, lastGoodEvaluationId: 'e', lastGoodAt: 0, error: null, definitionUpdatedAt: 0,
  });
  const users: UserContext[] = [];
  for (let i = 0; i < n; i++) {
    const userId = Buffer.from(`u-${(i * 2654435761) % 4294967296}-${i}`, 'utf8').toString('utf8');
    const power = i % 10 === 0;
    if (power) idx.applyMembership({ userId, segments: ['power'], evaluationId: 'e', changed: [], updatedAt: 0 });
    users.push({ userId, deviceType: 'android', ...(power ? { userGroup: 'power' } : {}) });
  }
  idx.markReady();
  const profile = (rule: TrafficRule): ShadowProfile => ({
    itemId: 'bench.item', profileVersion: 1, state: 'active', seed: 'bench.item', holdout: 0, itemVersion: '1.0.0', updatedBy: 'bench', updatedAt: 0,
    shadows: [{ name: 's', instrumentation: { capture: { performance: true, errors: true, usage: true }, points: [], sampleRate: 1 }, endpoints: {}, traffic: { percentage: 20, match: 'all', rules: [rule] } }],
  });
  const withSegment = compileProfile(profile({ attribute: 'segment', op: 'in', values: ['power'] }));
  const withGroup = compileProfile(profile({ attribute: 'userGroup', op: 'in', values: ['power'] }));
  // Same answers (sanity): the segment and the attribute select the same users.
  for (const u of users) if (trafficSplit(u, withSegment, idx).variant !== trafficSplit(u, withGroup, idx).variant) throw new Error(`segment and attribute rules disagree for ${u.userId}`);
  const time = (c: typeof withSegment) => {
    let k = 0;
    const t0 = process.hrtime.bigint();
    for (const u of users) if (trafficSplit(u, c, idx).variant !== 'original') k++;
    return { rate: users.length / (Number(process.hrtime.bigint() - t0) / 1e9), k };
  };
  const seg: number[] = [];
  const grp: number[] = [];
  for (let r = 0; r < 9; r++) {
    seg.push(time(withSegment).rate);
    grp.push(time(withGroup).rate);
  }
  const a = median(seg);
  const b = median(grp);
  return {
    name: 'segments: traffic split with a segment rule', unit: 'decisions/s', ours: a, peer: b, peerName: 'same rule on an attribute (userGroup in [...])', ratio: a / b,
    notes: `${n.toLocaleString('en')} users, 10 % in the segment, 20 % rollout; medians of 9 interleaved rounds; the difference is the hash + lookup per decision`,
  };
}

export async function run(opts: BenchOptions): Promise<BenchResult[]> {
  const members = opts.quick ? 200_000 : 1_000_000;
  const ours: ChildResult[] = [];
  const peer: ChildResult[] = [];
  for (let i = 0; i < 3; i++) {
    ours.push(runChild('ours', members));
    peer.push(runChild('set', members));
  }
  // 100,000 non-member probes: a false positive is m / 2^53 each; more than one is a defect.
  for (const r of ours) if (r.wrong > 1) throw new Error(`ours answered ${r.wrong} of 200,000 probes wrong (expected ≤ 1 at a false-positive rate of ${falsePositiveRate(members)})`);
  for (const r of peer) if (r.wrong !== 0) throw new Error(`the Set<string> peer answered ${r.wrong} probes wrong`);
  const mbOurs = median(ours.map((r) => r.bytes)) / 1e6;
  const mbPeer = median(peer.map((r) => r.bytes)) / 1e6;
  const lOurs = median(ours.map((r) => r.lookupsPerSec));
  const lPeer = median(peer.map((r) => r.lookupsPerSec));
  return [
    segmentRuleCost(opts.quick),
    {
      name: `segments: resolver memory for ${members.toLocaleString('en')} members`, unit: 'MB', ours: mbOurs, peer: mbPeer, peerName: 'Set<string> of user ids', ratio: mbOurs / mbPeer,
      notes: `median of 3 child processes each; ${(mbOurs * 1e6 / members).toFixed(1)} B/member ours vs ${(mbPeer * 1e6 / members).toFixed(1)} B/member; false-positive rate ${falsePositiveRate(members).toExponential(1)} per lookup; default budget PENUMBRA_SEGMENT_TOTAL_MEMBERS=4,000,000 ≈ ${(4 * mbOurs * 1e6 / members).toFixed(0)} MB`,
    },
    {
      name: 'segments: membership lookups (half members)', unit: 'lookups/s', ours: lOurs, peer: lPeer, peerName: 'Set<string>.has', ratio: lOurs / lPeer,
      notes: `${members.toLocaleString('en')} members, 200,000 probes, median of 5 rounds × 3 processes; ours includes hashing the id (two murmur3)`,
    },
  ];
}

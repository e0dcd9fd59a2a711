/**
 * Records for the sink's tests and benchmark: one valid value per source topic, deterministic
 * from an index so a test can recompute what it produced.
 */
import type {
  Alert, Assignment, AuditEntry, CatalogEntry, DeadLetter, MetricWindow, ShadowProfile, TelemetryEvent,
} from '../../schemas/types.generated.ts';

export const T0 = 1764200000000;
const TYPES = ['perf', 'request', 'error', 'usage', 'session'] as const;

export function telemetryEvent(i: number, id = `ev-${i}`): TelemetryEvent {
  const type = TYPES[i % TYPES.length];
  return {
    id, itemId: 'com.example.notes', version: '1.4.0', variant: i % 2 ? 'checkout-v2' : 'original', profileVersion: 3,
    sessionId: `s-${i % 97}`, userId: `u-${i % 89}`, type, name: type === 'request' ? 'api' : `n${i % 7}`, ts: T0 + i,
    value: type === 'request' || type === 'perf' ? 100 + (i % 50) : null,
    attrs: type === 'request' ? { status: '200', path: '/v1/notes' } : {}, sentAt: T0 + i + 5, receivedAt: T0 + i + 9,
    controlOf: null, verified: true, unverifiedReason: null,
  };
}

/** Raw telemetry records `from`..`from + n - 1` for AvroProducer.send, ids `<idPrefix>-<i>`, keyed by session. */
export function telemetryRecords(topic: string, from: number, n: number, idPrefix: string): { topic: string; key: string; value: TelemetryEvent }[] {
  return Array.from({ length: n }, (_, k) => {
    const e = telemetryEvent(from + k, `${idPrefix}-${from + k}`);
    return { topic, key: e.sessionId, value: e };
  });
}

export function catalogEntry(versions: string[]): CatalogEntry {
  return {
    itemId: 'com.example.notes', name: 'Notes', latestVersion: versions[versions.length - 1], updatedAt: T0 + versions.length,
    versions: versions.map((version, k) => ({
      version, entry: 'index.html', manifestJson: JSON.stringify({ id: 'com.example.notes', version }), ingestedAt: T0 + k, requestId: `req-${k}`,
      variants: [
        { name: 'original', sha256: `o${k}`.padEnd(64, '0'), size: 1000 + k, files: 3, profileVersion: null, replacements: 0 },
        { name: 'checkout-v2', sha256: `s${k}`.padEnd(64, '0'), size: 1100 + k, files: 4, profileVersion: k + 1, replacements: 2 },
      ],
    })),
  };
}

export function shadowProfile(profileVersion: number): ShadowProfile {
  return {
    itemId: 'com.example.notes', profileVersion, state: profileVersion % 2 ? 'active' : 'rolled_back', seed: 'com.example.notes',
    holdout: 5, itemVersion: '1.4.0', original: { sha256: 'a'.repeat(64), size: 10 },
    shadows: [{
      name: 'checkout-v2', endpoints: { api: 'https://shadow.example.com' }, artifact: null,
      instrumentation: { capture: { performance: true, errors: true, usage: true }, points: [], sampleRate: 1 },
      traffic: { percentage: 20, match: 'all', rules: [] }, control: true, state: 'active', rollout: null, rolloutState: null,
    }],
    controlArtifact: null,
    schedule: null, bandit: null, banditState: null, promotion: null, guardrail: true, recentCommands: [], updatedBy: 'alice', updatedAt: T0 + profileVersion,
  };
}

export function assignment(i: number): Assignment {
  return {
    id: `a-${i}`, itemId: 'com.example.notes', userId: `u-${i}`, variant: i % 2 ? 'checkout-v2' : 'original', profileVersion: 3,
    bucket: i, reason: 'assigned', controlOf: null, deviceType: 'android', country: null, userGroup: null, appVersion: '1.4.0',
    attributes: { plan: 'pro' }, derived: ['country'], resolverId: 'r1', ts: T0 + i,
  };
}

export function metricWindow(events: number, emittedAt = T0 + 20000): MetricWindow {
  return {
    itemId: 'com.example.notes', variant: 'checkout-v2', windowSize: 10000, windowStart: T0, windowEnd: T0 + 10000,
    events, sessions: 4, users: 3, errors: 1, errorSessions: 1, errorRate: 0.25, requests: 2, requestErrors: 0, rate: events / 10,
    latency: { count: 2, mean: 150, p50: 150, p95: 195, p99: 199, sum: 300, sumSq: 50000 },
    conversions: { buy: { sessions: 1, rate: 0.25 } }, perf: { ttfb: { count: 1, mean: 80, p95: 80 } }, late: 0, emittedAt,
  };
}

export function alert(i: number): Alert {
  return {
    id: `al-${i}`, incidentId: 'inc-1', ruleId: 'guardrail', itemId: 'com.example.notes', variant: 'checkout-v2', metric: 'errorRate',
    state: i % 2 ? 'resolved' : 'fired', value: 0.3, threshold: 0.1, baseline: 0.05, message: 'error rate above 10%',
    windowEnd: T0 + 10000, action: null, at: T0 + 11000 + i,
  };
}

export function auditEntry(i: number): AuditEntry {
  return {
    id: `au-${i}`, itemId: 'com.example.notes', actor: 'alice', role: 'operator', action: 'rollback', outcome: 'accepted',
    reason: null, beforeJson: '{"state":"active"}', afterJson: '{"state":"rolled_back"}', evidenceJson: null, requestId: `req-${i}`, at: T0 + i,
  };
}

export function deadLetterRecord(i: number): DeadLetter {
  return {
    id: `dl-${i}`, sourceTopic: 'penumbra.telemetry.raw', partition: 0, offset: i, key: Buffer.from('k'), value: Buffer.from([1, 2, 3]),
    reason: 'invalid telemetry-event: ts: too old', errorCode: 'validation', processor: 'collector', at: T0 + i,
    valueLength: 3, valueSha256: '039058c6f2c0cb492c533b0a4d14ef77cc0f78abccced5287d84a1a2011cfb81', valueTruncated: false,
  };
}

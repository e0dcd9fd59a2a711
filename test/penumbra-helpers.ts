/**
 * Start a real Penumbra (createPenumbra) for an integration test: its own topic prefix, a fresh
 * data folder, port 0 and three tokens (viewer, operator, admin) — against the broker and
 * registry the global setup provides.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig, type PenumbraConfig } from '../pipeline/config/config.ts';
import { createPenumbra, type Penumbra, type PenumbraOptions } from '../pipeline/app/penumbra.ts';
import { uniquePrefix } from './stack-helpers.ts';
import type { TelemetryEvent } from '../schemas/types.generated.ts';
import { claimsFor, signAssignment } from '../pipeline/assignment-token/token.ts';

export const TOKENS = {
  viewer: 'viewer-token-0123456789abcdef',
  operator: 'operator-token-0123456789abcdef',
  admin: 'admin-token-0123456789abcdef0123',
} as const;

export interface TestPenumbra {
  p: Penumbra;
  url: string;
  cfg: PenumbraConfig;
  dataDir: string;
  prefix: string;
  auth(role: keyof typeof TOKENS): Record<string, string>;
  stop(): Promise<void>;
}

export function testConfig(name: string, env: Record<string, string> = {}): { cfg: PenumbraConfig; dataDir: string; prefix: string } {
  const dataDir = env.PENUMBRA_DATA_DIR ?? mkdtempSync(path.join(tmpdir(), `penumbra-${name}-`));
  const prefix = env.PENUMBRA_TOPIC_PREFIX ?? uniquePrefix(name);
  const cfg = loadConfig({
    KAFKA_BROKERS: process.env.KAFKA_BROKERS ?? '127.0.0.1:9092',
    SCHEMA_REGISTRY_URL: process.env.SCHEMA_REGISTRY_URL ?? 'http://127.0.0.1:8081/apis/ccompat/v7',
    PORT: '0',
    // Item pages' own origin: any free port (PORT+1 may be taken when a test pins PORT).
    PENUMBRA_CONTENT_PORT: '0',
    PENUMBRA_DATA_DIR: dataDir,
    PENUMBRA_TOPIC_PREFIX: prefix,
    PENUMBRA_PARTITIONS: '2',
    PENUMBRA_LOG_LEVEL: 'warn',
    PENUMBRA_TOKENS: `viewer:viewer:${TOKENS.viewer},operator:operator:${TOKENS.operator},admin:admin:${TOKENS.admin}`,
    ...env,
  });
  return { cfg, dataDir, prefix };
}

export async function startTestPenumbra(name: string, env: Record<string, string> = {}, opts: PenumbraOptions = {}): Promise<TestPenumbra> {
  const { cfg, dataDir, prefix } = testConfig(name, env);
  // PENUMBRA_PUBLIC_URL must be known before the server binds port 0: pin it when not given so
  // shadows built by this instance are reproducible within the test.
  const p = await createPenumbra(cfg, opts);
  return {
    p,
    url: p.url,
    cfg,
    dataDir,
    prefix,
    auth: (role) => ({ authorization: `Bearer ${TOKENS[role]}` }),
    stop: () => p.stop(),
  };
}

/** Multipart body for POST /api/v1/items. */
export function uploadForm(archive: Buffer, shadowConfig?: unknown, fileName = 'item.zip'): FormData {
  const fd = new FormData();
  if (shadowConfig !== undefined) fd.append('shadowConfig', typeof shadowConfig === 'string' ? shadowConfig : JSON.stringify(shadowConfig));
  fd.append('item', new Blob([new Uint8Array(archive)]), fileName);
  return fd;
}

/** A telemetry batch as a client POSTs it (docs/ARCHITECTURE.md "Telemetry batch"), plus the arm's `controlOf`. */
export interface VerifiedBatch {
  itemId: string;
  version?: string;
  variant: string;
  /** For variant `control`: the shadow whose control cohort sent it. */
  controlOf?: string | null;
  profileVersion?: number;
  sessionId: string;
  userId: string;
  events: { id: string; type: TelemetryEvent['type']; name: string; ts: number; value?: number | null; attrs?: Record<string, string> }[];
}

/**
 * Produces a batch straight to telemetry.raw as VERIFIED events — what the collector writes once
 * the batch's assignment token checked out. For tests of the processors that are not about the
 * token path (which has its own tests): unverified telemetry never reaches a window.
 */
export async function produceVerified(t: TestPenumbra, b: VerifiedBatch): Promise<void> {
  const now = Date.now();
  const records: TelemetryEvent[] = b.events.map((e) => ({
    id: e.id, itemId: b.itemId, version: b.version ?? '1.0.0', variant: b.variant, profileVersion: b.profileVersion ?? t.p.ctx.profileStore.get(b.itemId)?.profileVersion ?? 1,
    sessionId: b.sessionId, userId: b.userId, type: e.type, name: e.name, ts: e.ts, value: e.value ?? null, attrs: e.attrs ?? {}, sentAt: now, receivedAt: now,
    controlOf: b.variant === 'control' ? (b.controlOf ?? null) : null, verified: true, unverifiedReason: null,
  }));
  await t.p.ctx.producer.send(records.map((value) => ({ topic: t.cfg.topics.telemetryRaw, key: b.sessionId, value })));
}

/** What GET /api/v1/resolve answers (the fields tests use). */
export interface ResolvedUser {
  variant: string;
  controlOf?: string;
  profileVersion: number;
  token: string;
  tokenExpiresAt: number;
  launchUrl: string | null;
}

/**
 * Resolve `userId` like a device: the real variant and a real assignment token, to send as the
 * telemetry batch's `token` (plus `controlOf` for the control) so the collector verifies it.
 */
export async function resolveUser(t: TestPenumbra, itemId: string, userId: string, attrs: Record<string, string> = {}): Promise<ResolvedUser> {
  const res = await fetch(`${t.url}/api/v1/resolve?${new URLSearchParams({ itemId, userId, ...attrs })}`);
  if (!res.ok) throw new Error(`resolve ${itemId}/${userId}: HTTP ${res.status} ${await res.text()}`);
  return (await res.json()) as ResolvedUser;
}

/** The first users (`${prefix}0`, `${prefix}1`, …) the resolver puts in `variant` (and `controlOf`). */
export async function usersIn(t: TestPenumbra, itemId: string, variant: string, count = 1, opts: { controlOf?: string; prefix?: string; scan?: number } = {}): Promise<(ResolvedUser & { userId: string })[]> {
  const out: (ResolvedUser & { userId: string })[] = [];
  for (let i = 0; i < (opts.scan ?? 2000) && out.length < count; i++) {
    const userId = `${opts.prefix ?? 'user-'}${i}`;
    const r = await resolveUser(t, itemId, userId);
    if (r.variant === variant && (opts.controlOf === undefined || r.controlOf === opts.controlOf)) out.push({ ...r, userId });
  }
  if (out.length < count) throw new Error(`only ${out.length} of ${count} users resolved to ${variant}${opts.controlOf ? ` of ${opts.controlOf}` : ''}`);
  return out;
}

/**
 * A valid assignment token for a synthetic batch, signed with the deployment's own key ring —
 * for tests that post telemetry for made-up users without resolving each (the collector then
 * stores it as verified, provided the item and variant are in the current profile).
 */
export function mintToken(t: TestPenumbra, claims: { itemId: string; userId: string; variant: string; controlOf?: string; profileVersion?: number }, ttlSeconds = 3600): string {
  const { itemId, userId, variant, controlOf, profileVersion } = claims;
  return signAssignment(claimsFor({ itemId, userId, variant, controlOf, profileVersion: profileVersion ?? 0 }, Date.now(), ttlSeconds), t.p.ctx.assignmentKeys);
}

/** The batch with a valid token (and its controlOf) for its own item, user and variant. */
export function withToken<B extends { itemId: string; userId: string; variant: string; profileVersion?: number; controlOf?: string | null }>(t: TestPenumbra, batch: B): B & { token: string } {
  const controlOf = batch.controlOf ?? undefined;
  return { ...batch, token: mintToken(t, { itemId: batch.itemId, userId: batch.userId, variant: batch.variant, controlOf, profileVersion: batch.profileVersion }) };
}

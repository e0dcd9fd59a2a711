/**
 * Expo Updates protocol v1, server side, pure: request headers → a typed request, the choice
 * between a manifest and a directive, and the response headers and body. The router
 * (connectors/expo-updates) adds the resolver decision and the variant's files.
 *
 * Spec points implemented here (docs.expo.dev/technical-specs/expo-updates-1):
 * - request: `expo-protocol-version: 1` (else 406), `expo-platform` ios|android (else 400),
 *   `expo-runtime-version` (required), optional `expo-channel-name`, `expo-current-update-id`,
 *   `expo-embedded-update-id`, `expo-expect-signature` (Expo SFV dictionary), `accept` with q values;
 * - response structures: multipart/mixed (manifest or directive part) and application/expo+json
 *   or application/json (manifest only; a directive is then 406), chosen by proactive negotiation;
 * - common headers: expo-protocol-version 1, expo-sfv-version 0, expo-manifest-filters,
 *   expo-server-defined-headers, cache-control `private, max-age=0`, content-type;
 * - directives: `rollBackToEmbedded` (parameters.commitTime) and `noUpdateAvailable`.
 */
import { randomUUID } from 'node:crypto';
import { PenumbraError, type FieldIssue } from '../errors.ts';
import { EXPO_PLATFORMS, type ExpoPlatform } from './expo-layout.ts';
import type { ExpoManifest } from './expo-manifest.ts';
import { encodeMultipartMixed, type MultipartPart } from './multipart.ts';
import { parseSfvDictionary, serializeSfvDictionary, type SfvDictionary } from './sfv.ts';
import { expoSignatureHeader, SIGNING_ALGORITHM, type CodeSigningKey } from './signing.ts';

export const PROTOCOL_VERSION = '1';
/** Header Penumbra asks clients to send back (expo-server-defined-headers): the stable device id. */
export const USER_ID_HEADER = 'penumbra-user-id';

export type ResponseFormat = 'multipart' | 'expo+json' | 'json';

export interface ExpoRequest {
  platform: ExpoPlatform;
  runtimeVersion: string;
  channel?: string;
  currentUpdateId?: string;
  embeddedUpdateId?: string;
  /** Parsed `expo-expect-signature`, or null when the client does not verify signatures. */
  expectSignature: SfvDictionary | null;
  format: ResponseFormat;
  /** From `penumbra-user-id`, else `eas-client-id`, else `?userId=`; undefined when none was sent. */
  userId?: string;
}

export type Headers = Record<string, string | string[] | undefined>;

function one(h: Headers, name: string): string | undefined {
  const v = h[name];
  const s = Array.isArray(v) ? v[0] : v;
  return s === undefined || s.trim() === '' ? undefined : s.trim();
}

const badRequest = (message: string, issues: FieldIssue[]) => new PenumbraError('bad-request', message, { status: 400, issues });
const notAcceptable = (message: string, path: string) => new PenumbraError('not-acceptable', message, { status: 406, issues: [{ path, message }] });

const ID_RE = /^[A-Za-z0-9_.:-]{1,256}$/;
const HEADER_TEXT_RE = /^[\x20-\x7e]{1,255}$/;

/** Proactive negotiation over the three structures the spec defines (RFC 7231 §5.3.2 q values). */
export function negotiateFormat(accept: string | undefined): ResponseFormat | null {
  // A client library is required to send accept; without one, multipart (it carries everything).
  if (accept === undefined || accept.trim() === '') return 'multipart';
  const offers: { type: ResponseFormat; media: string }[] = [
    { type: 'multipart', media: 'multipart/mixed' },
    { type: 'expo+json', media: 'application/expo+json' },
    { type: 'json', media: 'application/json' },
  ];
  let best: { type: ResponseFormat; q: number; rank: number } | null = null;
  for (const raw of accept.split(',')) {
    const [mediaRaw, ...params] = raw.split(';').map((s) => s.trim().toLowerCase());
    let q = 1;
    for (const p of params) {
      const m = /^q=([01](?:\.\d{0,3})?)$/.exec(p);
      if (m) q = Number(m[1]);
    }
    if (q <= 0) continue;
    offers.forEach((o, rank) => {
      const matches = mediaRaw === o.media || mediaRaw === '*/*' || (mediaRaw === 'multipart/*' && o.type === 'multipart') || (mediaRaw === 'application/*' && o.type !== 'multipart');
      // Highest q wins; among equals, our order (multipart first: it can carry directives).
      if (matches && (best === null || q > best.q || (q === best.q && rank < best.rank))) best = { type: o.type, q, rank };
    });
  }
  return (best as { type: ResponseFormat } | null)?.type ?? null;
}

/** Parse and check the request headers; throws 400/406 problems naming the header at fault. */
export function parseExpoRequest(h: Headers, query: { userId?: unknown } = {}): ExpoRequest {
  const version = one(h, 'expo-protocol-version');
  if (version !== PROTOCOL_VERSION) {
    throw notAcceptable(`this server speaks Expo Updates protocol version 1; the request ${version === undefined ? 'sent no expo-protocol-version' : `asked for version ${version}`}`, 'header/expo-protocol-version');
  }
  const issues: FieldIssue[] = [];
  const platform = one(h, 'expo-platform');
  if (platform === undefined) issues.push({ path: 'header/expo-platform', message: 'required: ios or android' });
  else if (!(EXPO_PLATFORMS as readonly string[]).includes(platform)) issues.push({ path: 'header/expo-platform', message: `must be ios or android, got "${platform.slice(0, 32)}"` });
  const runtimeVersion = one(h, 'expo-runtime-version');
  if (runtimeVersion === undefined) issues.push({ path: 'header/expo-runtime-version', message: 'required' });
  else if (!HEADER_TEXT_RE.test(runtimeVersion)) issues.push({ path: 'header/expo-runtime-version', message: 'printable ASCII, at most 255 characters' });
  const channel = one(h, 'expo-channel-name');
  if (channel !== undefined && !HEADER_TEXT_RE.test(channel)) issues.push({ path: 'header/expo-channel-name', message: 'printable ASCII, at most 255 characters' });
  const ids: Record<'currentUpdateId' | 'embeddedUpdateId', string | undefined> = { currentUpdateId: undefined, embeddedUpdateId: undefined };
  for (const [key, name] of [['currentUpdateId', 'expo-current-update-id'], ['embeddedUpdateId', 'expo-embedded-update-id']] as const) {
    const v = one(h, name);
    if (v !== undefined && !ID_RE.test(v)) issues.push({ path: `header/${name}`, message: 'an update id (UUID)' });
    else ids[key] = v?.toLowerCase();
  }
  let expectSignature: SfvDictionary | null = null;
  const expect = one(h, 'expo-expect-signature');
  if (expect !== undefined) {
    expectSignature = parseSfvDictionary(expect);
    if (expectSignature === null) issues.push({ path: 'header/expo-expect-signature', message: 'not an Expo SFV dictionary (e.g. sig, keyid="main", alg="rsa-v1_5-sha256")' });
  }
  let userId: string | undefined;
  const sources: [string, string | undefined][] = [
    [`header/${USER_ID_HEADER}`, one(h, USER_ID_HEADER)],
    ['header/eas-client-id', one(h, 'eas-client-id')],
    ['query/userId', typeof query.userId === 'string' ? query.userId : undefined],
  ];
  for (const [source, candidate] of sources) {
    if (candidate === undefined) continue;
    if (!ID_RE.test(candidate)) issues.push({ path: source, message: 'a device id: letters, digits, _ . : - (max 256)' });
    else userId = candidate;
    break;
  }
  if (issues.length > 0) throw badRequest('Expo Updates request headers are invalid', issues);
  const format = negotiateFormat(one(h, 'accept'));
  if (format === null) throw notAcceptable('accept must allow multipart/mixed, application/expo+json or application/json', 'header/accept');
  return { platform: platform as ExpoPlatform, runtimeVersion: runtimeVersion!, channel, ...ids, expectSignature, format, userId };
}

/** A new device id for a client that sent none; returned in expo-server-defined-headers so it sticks. */
export function newDeviceId(): string {
  return `d-${randomUUID()}`;
}

export type Directive = { type: 'rollBackToEmbedded'; parameters: { commitTime: string } } | { type: 'noUpdateAvailable' };

export type ExpoAnswer = { kind: 'manifest'; manifest: ExpoManifest } | { kind: 'directive'; directive: Directive; manifest?: ExpoManifest };

export interface AnswerInput {
  /** The item's profile state: a rolled-back item sends every app back to its embedded update. */
  rolledBack: boolean;
  /** When the rollback happened (ISO), the directive's commitTime. */
  rolledBackAt: string;
  /** The assigned variant's manifest, or null when none can run on this client (runtime, platform). */
  manifest: ExpoManifest | null;
  currentUpdateId?: string;
  embeddedUpdateId?: string;
}

/**
 * Manifest or directive:
 * - rolled back → `rollBackToEmbedded`, or `noUpdateAvailable` once the client runs its embedded update;
 * - nothing runnable (runtime version or platform not served) → `noUpdateAvailable`;
 * - the client already runs the assigned update → `noUpdateAvailable`;
 * - otherwise the manifest.
 */
export function chooseAnswer(a: AnswerInput): ExpoAnswer {
  if (a.rolledBack) {
    if (a.currentUpdateId !== undefined && a.currentUpdateId === a.embeddedUpdateId) return { kind: 'directive', directive: { type: 'noUpdateAvailable' } };
    return { kind: 'directive', directive: { type: 'rollBackToEmbedded', parameters: { commitTime: a.rolledBackAt } } };
  }
  if (a.manifest === null) return { kind: 'directive', directive: { type: 'noUpdateAvailable' } };
  if (a.currentUpdateId !== undefined && a.currentUpdateId === a.manifest.id.toLowerCase()) {
    return { kind: 'directive', directive: { type: 'noUpdateAvailable' }, manifest: a.manifest };
  }
  return { kind: 'manifest', manifest: a.manifest };
}

export interface EncodedResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

export interface EncodeInput {
  answer: ExpoAnswer;
  request: ExpoRequest;
  /** expo-manifest-filters (metadata keys the client filters stored updates by). */
  filters: SfvDictionary;
  /** expo-server-defined-headers. */
  serverHeaders: SfvDictionary;
  signingKey: CodeSigningKey | null;
  /** Random per response in production; fixed in golden tests. */
  boundary?: string;
  /**
   * JSON.stringify(the answer's manifest), when the caller already has it (the router writes it
   * from a per-variant cached prefix: connectors/expo-updates/router.ts). Must be exactly that
   * text; the manifest is serialised here otherwise.
   */
  manifestJson?: string;
}

/** Checks the client's signature expectations against our key; 406 when we cannot meet them. */
export function checkSignatureRequest(expect: SfvDictionary | null, key: CodeSigningKey | null): void {
  if (expect === null) return;
  if (key === null) throw notAcceptable('the client expects signed manifests (expo-expect-signature) but this server has no code signing key; set PENUMBRA_EXPO_SIGNING_KEY_FILE', 'header/expo-expect-signature');
  if (typeof expect.keyid === 'string' && expect.keyid !== key.keyId) {
    throw notAcceptable(`the client verifies with keyid "${expect.keyid}" but this server signs with "${key.keyId}" (PENUMBRA_EXPO_SIGNING_KEY_ID)`, 'header/expo-expect-signature');
  }
  if (typeof expect.alg === 'string' && expect.alg !== SIGNING_ALGORITHM) {
    throw notAcceptable(`this server signs with ${SIGNING_ALGORITHM}, the client asked for ${expect.alg}`, 'header/expo-expect-signature');
  }
}

/** Status, headers and body of the answer in the negotiated structure. */
export function encodeAnswer(e: EncodeInput): EncodedResponse {
  const { answer, request } = e;
  const sign = request.expectSignature !== null && e.signingKey !== null ? e.signingKey : null;
  const headers: Record<string, string> = {
    'expo-protocol-version': PROTOCOL_VERSION,
    'expo-sfv-version': '0',
    'expo-manifest-filters': serializeSfvDictionary(e.filters),
    'expo-server-defined-headers': serializeSfvDictionary(e.serverHeaders),
    // Decisions change with every config change: the spec asks for a short cache life.
    'cache-control': 'private, max-age=0',
    vary: 'accept, expo-platform, expo-runtime-version, expo-channel-name, expo-current-update-id, expo-embedded-update-id, expo-expect-signature, penumbra-user-id, eas-client-id',
  };
  if (request.format !== 'multipart') {
    // The JSON structures carry a manifest only. A client that already runs it learns nothing
    // new from it, so it is a fine answer to `noUpdateAvailable` too; a rollback is not.
    const manifest = answer.kind === 'manifest' ? answer.manifest : answer.directive.type === 'noUpdateAvailable' ? answer.manifest : undefined;
    if (manifest === undefined) {
      throw notAcceptable(`the answer is a ${answer.kind === 'directive' ? answer.directive.type : 'directive'} directive, which needs accept: multipart/mixed`, 'header/accept');
    }
    const body = Buffer.from(e.manifestJson ?? JSON.stringify(manifest), 'utf8');
    headers['content-type'] = request.format === 'expo+json' ? 'application/expo+json' : 'application/json';
    if (sign) headers['expo-signature'] = expoSignatureHeader(body, sign);
    return { status: 200, headers, body };
  }
  const part: MultipartPart =
    answer.kind === 'manifest'
      ? { name: 'manifest', contentType: 'application/json', body: Buffer.from(e.manifestJson ?? JSON.stringify(answer.manifest), 'utf8') }
      : { name: 'directive', contentType: 'application/json', body: Buffer.from(JSON.stringify(answer.directive), 'utf8') };
  if (sign) part.headers = { 'expo-signature': expoSignatureHeader(part.body, sign) };
  const boundary = e.boundary ?? `penumbra-${randomUUID()}`;
  const mp = encodeMultipartMixed([part], boundary);
  headers['content-type'] = mp.contentType;
  return { status: 200, headers, body: mp.body };
}

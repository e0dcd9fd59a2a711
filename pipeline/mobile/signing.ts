/**
 * Code signing of Expo Updates parts (spec "Code Signing"): RSASSA-PKCS1-v1_5 with SHA-256 over
 * the exact bytes of the part body, base64, sent as the part header
 * `expo-signature: sig="<base64>", keyid="<id>", alg="rsa-v1_5-sha256"` (an Expo SFV dictionary).
 * The client verifies with the certificate embedded in the app (`updates.codeSigningCertificate`)
 * whose metadata names the same keyid and algorithm. Pure apart from node:crypto.
 */
import { createHash, createPrivateKey, createSign, type KeyObject } from 'node:crypto';
import { ConfigError } from '../errors.ts';
import { serializeSfvDictionary } from './sfv.ts';

export const SIGNING_ALGORITHM = 'rsa-v1_5-sha256';

export interface CodeSigningKey {
  keyId: string;
  key: KeyObject;
}

/** Load a PEM RSA private key (PKCS#1 or PKCS#8); ConfigError naming `source` otherwise. */
export function loadCodeSigningKey(pem: string, keyId: string, source = 'PENUMBRA_EXPO_SIGNING_KEY_FILE'): CodeSigningKey {
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch (err) {
    throw new ConfigError(`${source}: not a PEM private key (${(err as Error).message})`);
  }
  if (key.asymmetricKeyType !== 'rsa') throw new ConfigError(`${source}: expo-updates code signing needs an RSA key, got ${key.asymmetricKeyType}`);
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(keyId)) throw new ConfigError(`PENUMBRA_EXPO_SIGNING_KEY_ID: letters, digits, _ . - (max 64), got "${keyId}"`);
  return { keyId, key };
}

/** Base64 RSA-SHA256 signature of `body`. */
export function signBody(body: Buffer, k: CodeSigningKey): string {
  return createSign('RSA-SHA256').update(body).sign(k.key, 'base64');
}

/**
 * Header values already computed, per key, by SHA-256 of the signed bytes. RSASSA-PKCS1-v1_5 is
 * deterministic — the same bytes always get the same signature — so identical parts (every
 * `rollBackToEmbedded` of one rollback, `noUpdateAvailable`, a manifest without per-device
 * fields) are signed once instead of once per answer (an RSA-2048 signature costs ~1-2 ms of
 * the event loop here). Bounded: the oldest entries go first.
 */
const signed = new WeakMap<CodeSigningKey, Map<string, string>>();
const SIGNED_MAX = 1024;

/** The `expo-signature` header value for `body`. */
export function expoSignatureHeader(body: Buffer, k: CodeSigningKey): string {
  let m = signed.get(k);
  if (m === undefined) signed.set(k, (m = new Map()));
  const digest = createHash('sha256').update(body).digest('base64');
  let v = m.get(digest);
  if (v === undefined) {
    v = serializeSfvDictionary({ sig: signBody(body, k), keyid: k.keyId, alg: SIGNING_ALGORITHM });
    if (m.size >= SIGNED_MAX) m.delete(m.keys().next().value as string);
    m.set(digest, v);
  }
  return v;
}

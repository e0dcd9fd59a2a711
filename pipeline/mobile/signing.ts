/**
 * Code signing of Expo Updates parts (spec "Code Signing"): RSASSA-PKCS1-v1_5 with SHA-256 over
 * the exact bytes of the part body, base64, sent as the part header
 * `expo-signature: sig="<base64>", keyid="<id>", alg="rsa-v1_5-sha256"` (an Expo SFV dictionary).
 * The client verifies with the certificate embedded in the app (`updates.codeSigningCertificate`)
 * whose metadata names the same keyid and algorithm. Pure apart from node:crypto.
 */
import { createPrivateKey, createSign, type KeyObject } from 'node:crypto';
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

/** The `expo-signature` header value for `body`. */
export function expoSignatureHeader(body: Buffer, k: CodeSigningKey): string {
  return serializeSfvDictionary({ sig: signBody(body, k), keyid: k.keyId, alg: SIGNING_ALGORITHM });
}

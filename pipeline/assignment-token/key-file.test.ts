import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ConfigError } from '../errors.ts';
import { KEY_FILE, loadAssignmentKeys } from './key-file.ts';
import { parseKeyRing, signAssignment, verifyAssignment } from './token.ts';

const dir = () => mkdtempSync(path.join(tmpdir(), 'penumbra-keys-'));

describe('assignment key ring source', () => {
  it('uses the configured ring and writes nothing', () => {
    const d = dir();
    const ring = parseKeyRing(`cfg:${Buffer.alloc(32, 1).toString('base64')}`);
    expect(loadAssignmentKeys({ configured: ring, dataDir: d })).toEqual({ ring, source: 'config', created: false });
    expect(() => statSync(path.join(d, KEY_FILE))).toThrow();
  });

  it('generates one 32-byte key 0600 under the data folder once, and every later process reads the same', () => {
    const d = dir();
    const a = loadAssignmentKeys({ configured: null, dataDir: d });
    expect(a.created).toBe(true);
    expect(a.ring).toHaveLength(1);
    expect(a.ring[0].secret.length).toBe(32);
    expect(statSync(a.source).mode & 0o777).toBe(0o600);
    const b = loadAssignmentKeys({ configured: null, dataDir: d });
    expect(b.created).toBe(false);
    expect(b.ring).toEqual(a.ring);
    // What one process signs, another on the same data folder verifies.
    const token = signAssignment({ itemId: 'i', userId: 'u', variant: 'control', controlOf: 's', profileVersion: 1, iat: 1, exp: 2 ** 31 }, a.ring);
    expect(verifyAssignment(token, b.ring, Date.now()).ok).toBe(true);
    expect(readFileSync(a.source, 'utf8')).toMatch(/every process of this deployment must share/);
  });

  it('refuses a damaged key file with the file named, rather than signing with a new key', () => {
    const d = dir();
    writeFileSync(path.join(d, KEY_FILE), 'k1:c2hvcnQ=\n');
    expect(() => loadAssignmentKeys({ configured: null, dataDir: d })).toThrow(ConfigError);
    expect(() => loadAssignmentKeys({ configured: null, dataDir: d })).toThrow(KEY_FILE);
  });
});

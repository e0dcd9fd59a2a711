/**
 * Expo Structured Field Values, version 0 (the subset of RFC 8941 that the Expo Updates protocol
 * uses for `expo-expect-signature`, `expo-signature`, `expo-manifest-filters` and
 * `expo-server-defined-headers`): dictionaries whose members are strings, integers, decimals or
 * booleans (a bare key is `true`). Parameters and inner lists are not part of Expo SFV and are
 * refused. Pure; used by the protocol core and by the tests.
 */

export type SfvItem = string | number | boolean;
export type SfvDictionary = Record<string, SfvItem>;

const KEY_RE = /^[a-z*][a-z0-9_\-.*]*$/;

/** Parse a dictionary; null when the value is not valid Expo SFV (the caller decides 400 or ignore). */
export function parseSfvDictionary(input: string): SfvDictionary | null {
  const out: SfvDictionary = {};
  let i = 0;
  const s = input;
  const ws = () => {
    while (i < s.length && (s[i] === ' ' || s[i] === '\t')) i++;
  };
  ws();
  if (i === s.length) return out;
  for (;;) {
    const m = /^[a-z*][a-z0-9_\-.*]*/.exec(s.slice(i));
    if (!m) return null;
    const key = m[0];
    i += key.length;
    let value: SfvItem = true;
    if (s[i] === '=') {
      i++;
      const item = parseItem();
      if (item === null) return null;
      value = item;
    }
    out[key] = value;
    ws();
    if (i === s.length) return out;
    if (s[i] !== ',') return null;
    i++;
    ws();
    if (i === s.length) return null; // trailing comma
  }

  function parseItem(): SfvItem | null {
    if (s[i] === '"') {
      let v = '';
      i++;
      while (i < s.length) {
        const c = s[i];
        if (c === '\\') {
          const n = s[i + 1];
          if (n !== '"' && n !== '\\') return null;
          v += n;
          i += 2;
          continue;
        }
        if (c === '"') {
          i++;
          return v;
        }
        const code = c.charCodeAt(0);
        if (code < 0x20 || code > 0x7e) return null;
        v += c;
        i++;
      }
      return null;
    }
    if (s[i] === '?') {
      const b = s[i + 1];
      if (b !== '0' && b !== '1') return null;
      i += 2;
      return b === '1';
    }
    const m = /^-?\d{1,15}(\.\d{1,3})?/.exec(s.slice(i));
    if (!m) return null;
    i += m[0].length;
    return Number(m[0]);
  }
}

/** Serialise a dictionary (strings quoted and escaped, `true` as a bare key). */
export function serializeSfvDictionary(dict: SfvDictionary): string {
  return Object.entries(dict)
    .map(([k, v]) => {
      if (!KEY_RE.test(k)) throw new Error(`invalid SFV key ${JSON.stringify(k)}`);
      if (v === true) return k;
      if (v === false) return `${k}=?0`;
      if (typeof v === 'number') {
        if (!Number.isFinite(v)) throw new Error(`SFV numbers must be finite (${k})`);
        return `${k}=${Number.isInteger(v) ? String(v) : String(Math.round(v * 1000) / 1000)}`;
      }
      if (/[^\x20-\x7e]/.test(v)) throw new Error(`SFV strings must be printable ASCII (${k})`);
      return `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
    })
    .join(', ');
}

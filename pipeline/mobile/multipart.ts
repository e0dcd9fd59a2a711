/**
 * multipart/mixed encoding (RFC 2046 §5.1) of an Expo Updates answer: each part carries
 * `content-disposition: inline; name="<manifest|directive|extensions>"`, a content type and, when
 * the client asked for code signing, an `expo-signature` header. Pure; the boundary is given by
 * the caller (random per response) and checked not to occur in any body.
 */

export interface MultipartPart {
  name: 'manifest' | 'directive' | 'extensions';
  contentType: string;
  body: Buffer;
  /** Extra part headers (lower-case names), e.g. `expo-signature`. */
  headers?: Record<string, string>;
}

const BOUNDARY_RE = /^[0-9A-Za-z'()+_,\-./:=?]{1,70}$/;

export function encodeMultipartMixed(parts: MultipartPart[], boundary: string): { contentType: string; body: Buffer } {
  if (!BOUNDARY_RE.test(boundary)) throw new Error(`invalid multipart boundary ${JSON.stringify(boundary)}`);
  const delimiter = Buffer.from(`--${boundary}`, 'latin1');
  const chunks: Buffer[] = [];
  for (const p of parts) {
    if (p.body.includes(delimiter)) throw new Error('multipart boundary occurs in a part body');
    const lines = [`--${boundary}`, `content-disposition: inline; name="${p.name}"`, `content-type: ${p.contentType}`];
    for (const [k, v] of Object.entries(p.headers ?? {})) {
      if (/[\r\n]/.test(k) || /[\r\n]/.test(v)) throw new Error('header values must not contain line breaks');
      lines.push(`${k}: ${v}`);
    }
    chunks.push(Buffer.from(lines.join('\r\n') + '\r\n\r\n', 'utf8'), p.body, Buffer.from('\r\n', 'latin1'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`, 'latin1'));
  return { contentType: `multipart/mixed; boundary=${boundary}`, body: Buffer.concat(chunks) };
}

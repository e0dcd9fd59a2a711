/**
 * A deliberately small YAML reader for docker-compose.yml (no YAML library is installed):
 * block mappings, block sequences (of scalars or of mappings), plain / single- / double-quoted
 * scalars, `#` comments, and flow collections written as JSON (`["a", "b"]`, `{}`).
 * Anything else (anchors, multi-line scalars, tags, documents) throws, so the compose file can
 * never be half-understood by the test that checks it.
 */

export type YamlValue = string | number | boolean | null | YamlValue[] | { [k: string]: YamlValue };

interface Line {
  indent: number;
  text: string;
  no: number;
}

function stripComment(s: string): string {
  let quote: string | null = null;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (quote) {
      if (c === '\\' && quote === '"') i++;
      else if (c === quote) quote = null;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '#' && (i === 0 || /\s/.test(s[i - 1]!))) return s.slice(0, i);
  }
  return s;
}

function scalar(raw: string, no: number): YamlValue {
  const s = raw.trim();
  if (s === '') return null;
  if (s.startsWith('"')) {
    try {
      return JSON.parse(s) as string;
    } catch {
      throw new Error(`line ${no}: unsupported double-quoted string ${s}`);
    }
  }
  if (s.startsWith("'")) {
    if (!s.endsWith("'") || s.length < 2) throw new Error(`line ${no}: unterminated single-quoted string`);
    return s.slice(1, -1).replace(/''/g, "'");
  }
  if (s.startsWith('[') || s.startsWith('{')) {
    try {
      return JSON.parse(s) as YamlValue;
    } catch {
      throw new Error(`line ${no}: flow collections must be valid JSON here: ${s}`);
    }
  }
  if (/^[&*!|>]/.test(s)) throw new Error(`line ${no}: anchors, tags and block scalars are not supported: ${s}`);
  if (s === 'null' || s === '~') return null;
  if (s === 'true') return true;
  if (s === 'false') return false;
  if (/^-?\d+(\.\d+)?$/.test(s)) return Number(s);
  return s;
}

/** Split `key: value` at the first colon followed by a space or end of line, outside quotes. */
function splitKey(text: string): [string, string] | null {
  let quote: string | null = null;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote) {
      if (c === quote) quote = null;
    } else if ((c === '"' || c === "'") && i === 0) quote = c;
    else if (c === ':' && (i + 1 === text.length || text[i + 1] === ' ')) {
      const key = text.slice(0, i).trim();
      return [String(scalar(key, 0)), text.slice(i + 1)];
    }
  }
  return null;
}

export function parseYaml(src: string): YamlValue {
  const lines: Line[] = [];
  src.split(/\r?\n/).forEach((rawLine, i) => {
    if (rawLine.includes('\t')) {
      const lead = /^\s*/.exec(rawLine)![0];
      if (lead.includes('\t')) throw new Error(`line ${i + 1}: tabs are not allowed for indentation`);
    }
    const noComment = stripComment(rawLine).replace(/\s+$/, '');
    if (noComment.trim() === '' || noComment.trim() === '---') return;
    const indent = noComment.length - noComment.trimStart().length;
    lines.push({ indent, text: noComment.trim(), no: i + 1 });
  });
  let pos = 0;

  function parseBlock(indent: number): YamlValue {
    const first = lines[pos];
    if (!first || first.indent < indent) return null;
    if (first.text.startsWith('- ') || first.text === '-') return parseSeq(first.indent);
    return parseMap(first.indent);
  }

  function parseMap(indent: number): { [k: string]: YamlValue } {
    const out: { [k: string]: YamlValue } = {};
    while (pos < lines.length) {
      const line = lines[pos]!;
      if (line.indent < indent) break;
      if (line.indent > indent) throw new Error(`line ${line.no}: unexpected indentation`);
      if (line.text.startsWith('- ')) break;
      const kv = splitKey(line.text);
      if (!kv) throw new Error(`line ${line.no}: expected "key: value", got ${line.text}`);
      const [key, rest] = kv;
      if (key in out) throw new Error(`line ${line.no}: duplicate key ${key}`);
      pos++;
      if (rest.trim() === '') {
        const next = lines[pos];
        // A list may sit at the same indentation as its key, as compose files often write it.
        if (next && (next.indent > indent || (next.indent === indent && next.text.startsWith('- ')))) {
          out[key] = parseBlock(next.indent);
        } else out[key] = null;
      } else out[key] = scalar(rest, line.no);
    }
    return out;
  }

  function parseSeq(indent: number): YamlValue[] {
    const out: YamlValue[] = [];
    while (pos < lines.length) {
      const line = lines[pos]!;
      if (line.indent !== indent || !(line.text.startsWith('- ') || line.text === '-')) {
        if (line.indent > indent) throw new Error(`line ${line.no}: unexpected indentation`);
        break;
      }
      const item = line.text === '-' ? '' : line.text.slice(2);
      const itemIndent = indent + 2 + (item.length - item.trimStart().length);
      if (item.trim() === '') {
        pos++;
        out.push(parseBlock(indent + 1));
      } else if (splitKey(item.trim()) && !/^["'[{]/.test(item.trim())) {
        // `- key: value` opens a mapping whose further keys are indented to line up with `key`.
        lines[pos] = { indent: itemIndent, text: item.trim(), no: line.no };
        out.push(parseMap(itemIndent));
      } else {
        pos++;
        out.push(scalar(item, line.no));
      }
    }
    return out;
  }

  const result = parseBlock(0);
  if (pos < lines.length) throw new Error(`line ${lines[pos]!.no}: could not parse ${lines[pos]!.text}`);
  return result;
}

import avro from 'avsc';
import { readFileSync } from 'node:fs';
import { listSchemaFiles, TOPIC_SCHEMAS, latestSchemas } from './index.ts';
import { generateTypes, GENERATED_PATH } from './gen-types.ts';
import { topicNames } from '../pipeline/config/config.ts';

type Field = { name: string; type: unknown; doc?: string };

function walk(schema: unknown, visit: (rec: { name: string; doc?: string; fields: Field[] }) => void): void {
  if (Array.isArray(schema)) return schema.forEach((s) => walk(s, visit));
  if (!schema || typeof schema !== 'object') return;
  const s = schema as Record<string, unknown>;
  if (s.type === 'record') {
    visit(s as never);
    for (const f of s.fields as Field[]) walk(f.type, visit);
  } else if (s.type === 'array') walk(s.items, visit);
  else if (s.type === 'map') walk(s.values, visit);
  else if (typeof s.type === 'object') walk(s.type, visit);
}

describe('Avro schemas', () => {
  const files = listSchemaFiles();

  it('exist for every topic of the contract', () => {
    const names = new Set(files.map((f) => f.name));
    for (const key of Object.keys(topicNames('p.'))) expect(names).toContain(TOPIC_SCHEMAS[key as keyof typeof TOPIC_SCHEMAS]);
  });

  it.each(files.map((f) => [`${f.name}.v${f.version}`, f] as const))('%s parses and documents every record and field', (_n, f) => {
    expect(() => avro.Type.forSchema(f.schema as avro.Schema)).not.toThrow();
    const missing: string[] = [];
    walk(f.schema, (rec) => {
      if (!rec.doc && rec.name !== 'ArtifactRef') {
        /* nested helper records may rely on their field doc */
      }
      for (const field of rec.fields) if (!field.doc || field.doc.length < 3) missing.push(`${rec.name}.${field.name}`);
    });
    expect(missing).toEqual([]);
  });

  it('each new version can read data of the previous one (BACKWARD)', () => {
    const byName = new Map<string, typeof files>();
    for (const f of files) byName.set(f.name, [...(byName.get(f.name) ?? []), f]);
    for (const versions of byName.values()) {
      for (let i = 1; i < versions.length; i++) {
        const reader = avro.Type.forSchema(versions[i].schema as avro.Schema);
        const writer = avro.Type.forSchema(versions[i - 1].schema as avro.Schema);
        expect(() => reader.createResolver(writer)).not.toThrow();
      }
    }
  });

  it('TypeScript types are generated from the latest schemas and committed up to date', () => {
    expect(readFileSync(GENERATED_PATH, 'utf8')).toBe(generateTypes());
    expect(latestSchemas().size).toBe(new Set(files.map((f) => f.name)).size);
  });
});

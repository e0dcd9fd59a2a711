import { readFileSync } from 'node:fs';
import path from 'node:path';
import { KNOWN_ENV, REQUIRED_ENV } from './env-names.ts';
import { parseYaml, type YamlValue } from './yaml-lite.ts';

const root = path.resolve(process.cwd());
type Obj = { [k: string]: YamlValue };
const compose = parseYaml(readFileSync(path.join(root, 'docker-compose.yml'), 'utf8')) as Obj;
const services = compose.services as Obj;

/** Compose accepts `environment` as a mapping or as a list of KEY=value strings. */
function envOf(service: string): Record<string, string> {
  const env = (services[service] as Obj).environment;
  if (Array.isArray(env)) {
    return Object.fromEntries(env.map((e) => String(e).split(/=(.*)/s).slice(0, 2) as [string, string]));
  }
  return Object.fromEntries(Object.entries((env ?? {}) as Obj).map(([k, v]) => [k, String(v)]));
}

/** Host side of each published port ("9092:9092", "127.0.0.1:8081:8080" or the long form). */
function publishedPorts(service: string): number[] {
  const ports = ((services[service] as Obj).ports ?? []) as YamlValue[];
  return ports.map((p) => {
    if (p && typeof p === 'object' && !Array.isArray(p)) return Number((p as Obj).published);
    const parts = String(p).split(':');
    return Number(parts.length >= 2 ? parts[parts.length - 2] : parts[0]);
  });
}

function containerPort(service: string, published: number): number {
  for (const p of ((services[service] as Obj).ports ?? []) as YamlValue[]) {
    const parts = String(p).split(':');
    if (Number(parts[parts.length - 2]) === published) return Number(parts[parts.length - 1]);
  }
  throw new Error(`${service} does not publish ${published}`);
}

describe('docker-compose.yml', () => {
  test('has the services', () => {
    expect(Object.keys(services)).toEqual(expect.arrayContaining(['kafka', 'registry', 's3', 'penumbra']));
  });

  test('penumbra only uses environment variables Penumbra knows', () => {
    const names = Object.keys(envOf('penumbra'));
    expect(names.length).toBeGreaterThan(0);
    expect(names.filter((n) => !KNOWN_ENV.includes(n))).toEqual([]);
    for (const required of ['KAFKA_BROKERS', 'SCHEMA_REGISTRY_URL', 'PENUMBRA_DATA_DIR', 'PORT']) {
      expect(names).toContain(required);
    }
  });

  test('the known list still has every name the docs and compose rely on', () => {
    expect(KNOWN_ENV).toEqual(expect.arrayContaining([...REQUIRED_ENV]));
  });

  test('Kafka, the registry and S3Proxy are published on loopback only (unauthenticated listeners; issue 17, item 7)', () => {
    for (const service of ['kafka', 'registry', 's3']) {
      const ports = ((services[service] as Obj).ports ?? []) as YamlValue[];
      expect(ports.length).toBeGreaterThan(0);
      for (const p of ports) {
        const hostIp = p && typeof p === 'object' && !Array.isArray(p) ? String((p as Obj).host_ip) : String(p).split(':').length === 3 ? String(p).split(':')[0] : '';
        expect({ service, hostIp }).toEqual({ service, hostIp: '127.0.0.1' });
      }
    }
  });

  test('the image runs as a non-root user', () => {
    const docker = readFileSync(new URL('../Dockerfile', import.meta.url), 'utf8');
    const users = [...docker.matchAll(/^USER\s+(\S+)/gm)].map((m) => m[1]);
    expect(users.length).toBeGreaterThan(0);
    expect(users[users.length - 1]).not.toMatch(/^(root|0)(:|$)/);
    // And the last USER comes before the command that starts Penumbra.
    expect(docker.lastIndexOf('USER ')).toBeLessThan(docker.lastIndexOf('CMD '));
  });

  test('publishes the default ports: Kafka 9092, registry 8081, API 7070', () => {
    expect(publishedPorts('kafka')).toContain(9092);
    expect(publishedPorts('registry')).toContain(8081);
    expect(publishedPorts('penumbra')).toContain(7070);
    expect(envOf('penumbra').PORT).toBe(String(containerPort('penumbra', 7070)));
  });

  test('kafka runs in KRaft mode as a combined node and advertises the host port', () => {
    const env = envOf('kafka');
    expect(env.KAFKA_PROCESS_ROLES?.split(',').sort()).toEqual(['broker', 'controller']);
    expect(env.KAFKA_CONTROLLER_QUORUM_VOTERS ?? env.KAFKA_CONTROLLER_QUORUM_BOOTSTRAP_SERVERS).toBeTruthy();
    expect(env.KAFKA_ADVERTISED_LISTENERS).toContain('127.0.0.1:9092');
    expect(String((services.kafka as Obj).image)).toBe('apache/kafka:4.1.1');
  });

  test('penumbra reaches kafka and the registry through addresses compose actually serves', () => {
    const env = envOf('penumbra');
    const [host, port] = env.KAFKA_BROKERS!.split(':');
    expect(host).toBe('kafka');
    expect(envOf('kafka').KAFKA_ADVERTISED_LISTENERS).toContain(`kafka:${port}`);
    const url = new URL(env.SCHEMA_REGISTRY_URL!);
    expect(url.hostname).toBe('registry');
    expect(url.pathname).toBe('/apis/ccompat/v7');
    // Inside the network the registry listens on its container port, not the published one.
    expect(Number(url.port)).toBe(containerPort('registry', 8081));
    expect(String((services.registry as Obj).image)).toBe('apicurio/apicurio-registry:3.0.9');
    expect(envOf('registry').APICURIO_KAFKASQL_BOOTSTRAP_SERVERS).toBe(env.KAFKA_BROKERS);
  });
});

describe('yaml-lite', () => {
  test('reads the subset the compose file uses', () => {
    const doc = parseYaml(
      [
        'a:',
        '  b: "x: y" # comment',
        "  c: 'it''s'",
        '  list:',
        '    - "1:2"',
        '    - plain',
        '  seqmap:',
        '  - name: n',
        '    val: 3',
        '  flow: ["CMD", "x"]',
        '  empty: {}',
        '  t: true',
      ].join('\n'),
    );
    expect(doc).toEqual({
      a: { b: 'x: y', c: "it's", list: ['1:2', 'plain'], seqmap: [{ name: 'n', val: 3 }], flow: ['CMD', 'x'], empty: {}, t: true },
    });
  });

  test('refuses what it does not understand instead of guessing', () => {
    expect(() => parseYaml('a: &anchor 1')).toThrow(/anchors/);
    expect(() => parseYaml('a:\n  b: 1\n    c: 2')).toThrow(/indentation/);
    expect(() => parseYaml('a: 1\na: 2')).toThrow(/duplicate/);
  });
});

describe('docker-compose.yml object storage', () => {
  test('penumbra keeps blobs and the Parquet export in the s3 service, on a port compose serves', () => {
    const env = envOf('penumbra');
    expect(env.PENUMBRA_BLOB_STORE).toBe('s3');
    expect(env.PENUMBRA_PARQUET_S3).toBe('true');
    const url = new URL(env.PENUMBRA_S3_ENDPOINT);
    expect(url.hostname).toBe('s3');
    expect(Number(url.port || 80)).toBe(containerPort('s3', 8333));
    expect(publishedPorts('s3')).toContain(8333);
    expect(envOf('s3').JCLOUDS_PROVIDER).toBe('filesystem');
  });
});

describe('docker-compose.yml multi-process topology (docs/scaling.md)', () => {
  const penumbras = Object.keys(services).filter((n) => n === 'penumbra' || n.startsWith('penumbra-'));
  const rolesOf = (n: string) => envOf(n).PENUMBRA_ROLES ?? 'api,processors,sink';

  test('two API processes, two processors members, exactly one sink, each role valid', async () => {
    const { parseRoles, formatRoles } = await import('../pipeline/roles/roles.ts');
    const roles = penumbras.map((n) => formatRoles(parseRoles(rolesOf(n))));
    expect(roles.filter((r) => r.split(',').includes('api'))).toHaveLength(2);
    expect(roles.filter((r) => r.split(',').includes('processors'))).toHaveLength(2);
    expect(roles.filter((r) => r.split(',').includes('sink'))).toHaveLength(1);
  });

  test('every Penumbra process shares brokers, registry, bucket, assignment keys and tokens', () => {
    const shared = ['KAFKA_BROKERS', 'SCHEMA_REGISTRY_URL', 'PENUMBRA_BLOB_STORE', 'PENUMBRA_S3_ENDPOINT', 'PENUMBRA_S3_BUCKET', 'PENUMBRA_ASSIGNMENT_KEYS', 'PENUMBRA_TOKENS'];
    for (const n of penumbras) {
      expect(Object.keys(envOf(n)).filter((k) => !KNOWN_ENV.includes(k))).toEqual([]);
      for (const k of shared) expect({ n, k, v: envOf(n)[k] }).toEqual({ n, k, v: envOf('penumbra')[k] });
    }
  });
});

/**
 * Schema registry access and the Confluent wire format.
 *
 * Wire format (Confluent): byte 0 = magic 0, bytes 1..4 = schema id (big-endian int32), then the
 * Avro binary body. We register through @kafkajs/confluent-schema-registry (Apicurio's
 * /apis/ccompat/v7 speaks the same API) and frame/unframe ourselves, so the hot path is one avsc
 * toBuffer plus a 5-byte header — no per-record registry call. Writer schemas of foreign ids are
 * fetched once and resolved into our reader type (schema evolution on read).
 */
import { SchemaRegistry, SchemaType, COMPATIBILITY } from '@kafkajs/confluent-schema-registry';
import avro from 'avsc';
import { avroType, schemaFor, type SchemaName } from '../../schemas/index.ts';
import type { SchemaTypes } from '../../schemas/types.generated.ts';
import { PenumbraError, UnavailableError } from '../errors.ts';
import { avroBoundsOk } from './avro-bounds.ts';

export class DecodeError extends PenumbraError {
  constructor(message: string, cause?: unknown) {
    super('decode', message, { status: 400, cause });
  }
}

export class SchemaRegistrationError extends PenumbraError {
  constructor(subject: string, detail: string, cause?: unknown) {
    super('schema-incompatible', `Schema for ${subject} refused by the registry: ${detail}`, { status: 409, cause });
  }
}

export const MAGIC = 0;
const SLAB_BYTES = 256 * 1024;
/** How long a schema id the registry refused stays refused without asking again (see refusedIds). */
const REFUSED_ID_TTL_MS = 60_000;
const REFUSED_IDS_MAX = 10_000;

export class AvroCodec {
  readonly registry: SchemaRegistry;
  private readonly ids = new Map<SchemaName, number>();
  private readonly readers = new Map<string, avro.Type | avro.Resolver>();
  private readonly writers = new Map<number, avro.Type>();
  /** The reader `decodeKnown` used last, per schema name (see there). */
  private readonly lastReader = new Map<SchemaName, { id: number; reader: avro.Type | avro.Resolver }>();

  constructor(readonly url: string) {
    this.registry = new SchemaRegistry({ host: url }, { forSchemaOptions: {} } as never);
  }

  /** Make sure the registry's global level is BACKWARD, the rule our schema tests assume. */
  async ensureCompatibility(): Promise<void> {
    const res = await fetch(`${this.url}/config`).catch((err) => {
      throw new UnavailableError(`schema registry at ${this.url} is unreachable: ${(err as Error).message}`, err);
    });
    const body = (await res.json().catch(() => ({}))) as { compatibilityLevel?: string; compatibility?: string };
    const level = body.compatibilityLevel ?? body.compatibility;
    if (level !== 'BACKWARD') {
      const put = await fetch(`${this.url}/config`, {
        method: 'PUT',
        headers: { 'content-type': 'application/vnd.schemaregistry.v1+json' },
        body: JSON.stringify({ compatibility: 'BACKWARD' }),
      });
      if (!put.ok) throw new UnavailableError(`cannot set BACKWARD compatibility on ${this.url}: HTTP ${put.status}`);
    }
  }

  /** Register `name`'s latest schema under `subject` (e.g. `<topic>-value`); returns its id. */
  async register(subject: string, name: SchemaName, schema: object = schemaFor(name).schema, attempt = 0): Promise<number> {
    try {
      const { id } = await this.registry.register(
        { type: SchemaType.AVRO, schema: JSON.stringify(schema) },
        { subject, compatibility: COMPATIBILITY.BACKWARD },
      );
      return id;
    } catch (err) {
      const e = err as Error & { status?: number; name?: string };
      // Several processes provisioning one prefix at once (docs/scaling.md): the client registers
      // a new subject, THEN sets its level. A second process asking in between sees the subject at
      // the registry's NONE and refuses; or both see a new subject and the second one's level is
      // refused because the rule exists. Either way the level we want is (about to be) BACKWARD:
      // set it (harmless when already set) and register again, a few times with a pause.
      if (attempt < 5 && /Compatibility does not match the configuration \(BACKWARD != NONE\)|rule named 'COMPATIBILITY' already exists/i.test(e.message)) {
        await fetch(`${this.url}/config/${encodeURIComponent(subject)}`, {
          method: 'PUT',
          headers: { 'content-type': 'application/vnd.schemaregistry.v1+json' },
          body: JSON.stringify({ compatibility: 'BACKWARD' }),
        }).then((r) => r.arrayBuffer(), () => null);
        await new Promise((r) => setTimeout(r, 50 + Math.random() * 150));
        return this.register(subject, name, schema, attempt + 1);
      }
      if (e.name === 'ConfluentSchemaRegistryCompatibilityError' || /incompatible|compatib/i.test(e.message)) {
        throw new SchemaRegistrationError(subject, e.message, err);
      }
      if (e.name === 'ConfluentSchemaRegistryError' || typeof e.status === 'number') {
        throw new SchemaRegistrationError(subject, e.message, err);
      }
      throw new UnavailableError(`schema registry at ${this.url} failed: ${e.message}`, err);
    }
  }

  /** Register `name` for `topic` and remember the id used when encoding for it. */
  async registerForTopic(topic: string, name: SchemaName): Promise<number> {
    const id = await this.register(`${topic}-value`, name);
    this.ids.set(name, id);
    this.topicIds.set(topic, id);
    this.topicSchema.set(topic, name);
    return id;
  }

  private readonly topicIds = new Map<string, number>();
  private readonly topicSchema = new Map<string, SchemaName>();

  schemaIdFor(topic: string): number {
    const id = this.topicIds.get(topic);
    if (id === undefined) throw new Error(`no schema registered for topic ${topic}; call registerForTopic first`);
    return id;
  }

  encode<N extends SchemaName>(topic: string, value: SchemaTypes[N]): Buffer {
    const name = this.topicSchema.get(topic);
    if (!name) throw new Error(`no schema registered for topic ${topic}`);
    const type = avroType(name);
    const body = type.toBuffer(value);
    const buf = Buffer.allocUnsafe(5 + body.length);
    buf[0] = MAGIC;
    buf.writeInt32BE(this.schemaIdFor(topic), 1);
    body.copy(buf, 5);
    return buf;
  }

  private slab = Buffer.allocUnsafe(0);
  private slabAt = 0;

  /**
   * `encode` without its two allocations and copies (avsc's toBuffer, then the framed copy): the
   * framed record is written straight into a shared 256 KiB slab and returned as a view of it.
   * Only for callers that hand the bytes to kafkajs at once and never write to them
   * (AvroProducer): a view keeps its slab alive, and a neighbour shares its memory. Issue 15:
   * the allocations were visible in the collector's profile.
   */
  encodeView<N extends SchemaName>(topic: string, value: SchemaTypes[N]): Buffer {
    const name = this.topicSchema.get(topic);
    if (!name) throw new Error(`no schema registered for topic ${topic}`);
    const type = avroType(name);
    let start = this.slabAt;
    let end = start + 5 <= this.slab.length ? type.encode(value, this.slab, start + 5) : -1;
    if (end < 0) {
      // The slab's rest is too small (avsc then returns a negative number): a fresh slab; a
      // record larger than a whole slab (an archive in an ingest request) gets its own buffer.
      this.slab = Buffer.allocUnsafe(SLAB_BYTES);
      this.slabAt = 0;
      start = 0;
      end = type.encode(value, this.slab, 5);
      if (end < 0) return this.encode(topic, value);
    }
    this.slab[start] = MAGIC;
    this.slab.writeInt32BE(this.schemaIdFor(topic), start + 1);
    this.slabAt = end;
    return this.slab.subarray(start, end);
  }

  /**
   * Schema ids the registry said it does not have (or not as Avro), remembered for a while: a
   * topic full of garbage would otherwise cost one registry round trip per record, making a
   * processor's batch slow enough to outlast its group session (found by the fresh-seed fuzz
   * pass, test/fuzz/kafka-topics). The verdict is the same DecodeError either way — such a record
   * is a dead letter whether it is asked again or not; the TTL only bounds how long an id that a
   * registry gains later (a restored backup) stays refused. Bounded: oldest forgotten first.
   */
  private readonly refusedIds = new Map<number, { at: number; message: string }>();

  private refuseId(id: number, message: string): DecodeError {
    this.refusedIds.delete(id);
    this.refusedIds.set(id, { at: Date.now(), message });
    if (this.refusedIds.size > REFUSED_IDS_MAX) this.refusedIds.delete(this.refusedIds.keys().next().value!);
    return new DecodeError(message);
  }

  /** Decode a framed value into `name`'s latest shape; throws DecodeError on anything wrong. */
  async decode<N extends SchemaName>(name: N, buf: Buffer | null): Promise<SchemaTypes[N]> {
    const id = this.frameId(buf);
    return this.decodeWith(name, id, await this.readerFor(name, id), buf!);
  }

  /**
   * `decode` without a promise, for hot loops (the warehouse sink): the value when the reader for
   * the record's schema id is already known, `undefined` when it is not (then call `decode`,
   * which fetches the writer schema once). Throws DecodeError like `decode`.
   */
  decodeKnown<N extends SchemaName>(name: N, buf: Buffer | null): SchemaTypes[N] | undefined {
    const id = this.frameId(buf);
    // The last reader per name first: a topic's records nearly all carry one schema id, and the
    // `name:id` key string per record was a visible allocation in the metrics member's profile.
    // (Readers are never removed, so a remembered one stays valid.)
    const last = this.lastReader.get(name);
    let reader = last !== undefined && last.id === id ? last.reader : undefined;
    if (reader === undefined) {
      reader = this.readers.get(`${name}:${id}`);
      if (reader !== undefined) this.lastReader.set(name, { id, reader });
    }
    return reader === undefined ? undefined : this.decodeWith(name, id, reader, buf!);
  }

  /**
   * The writer schema of a framed value and the reader type for `name` (fetching the writer once,
   * like `decode`), for decoders compiled per schema id (the warehouse sink's columnar path).
   * Throws DecodeError for a bad frame or an unknown id, UnavailableError when the registry is down.
   */
  async typesFor(name: SchemaName, buf: Buffer | null): Promise<{ id: number; writer: avro.Type; reader: avro.Type }> {
    const id = this.frameId(buf);
    await this.readerFor(name, id);
    return { id, writer: this.writers.get(id) ?? avroType(name), reader: avroType(name) };
  }

  /** The schema id of a framed value (DecodeError when the frame is not Confluent's). */
  schemaIdOf(buf: Buffer | null): number {
    return this.frameId(buf);
  }

  private frameId(buf: Buffer | null): number {
    if (!buf || buf.length < 6) throw new DecodeError(`value too short for the Confluent wire format (${buf?.length ?? 0} bytes)`);
    if (buf[0] !== MAGIC) throw new DecodeError(`unknown magic byte ${buf[0]} (expected 0: Confluent wire format)`);
    return buf.readInt32BE(1);
  }

  private decodeWith<N extends SchemaName>(name: N, id: number, reader: avro.Type | avro.Resolver, buf: Buffer): SchemaTypes[N] {
    const body = buf.subarray(5);
    // avsc trusts Avro block counts: a few bytes announcing 2^49 map entries would spin for
    // hours. Walk the body against the writer schema first (linear time) and refuse overruns.
    if (!avroBoundsOk(this.writers.get(id) ?? avroType(name), body)) {
      throw new DecodeError(`Avro body of schema id ${id} announces more data than its ${body.length} bytes hold`);
    }
    try {
      const type = avroType(name);
      const value = reader === type ? type.fromBuffer(body) : type.fromBuffer(body, reader as avro.Resolver, true);
      return value as SchemaTypes[N];
    } catch (err) {
      throw new DecodeError(`Avro body does not match schema id ${id}: ${(err as Error).message}`, err);
    }
  }

  private async readerFor(name: SchemaName, id: number): Promise<avro.Type | avro.Resolver> {
    const key = `${name}:${id}`;
    const cached = this.readers.get(key);
    if (cached) return cached;
    let writer = this.writers.get(id);
    if (!writer) {
      const refused = this.refusedIds.get(id);
      if (refused && Date.now() - refused.at < REFUSED_ID_TTL_MS) throw new DecodeError(refused.message);
      let schemaJson: unknown;
      try {
        // Raw schema text rather than the library's getSchema(): we build our own avsc type.
        const res = await fetch(`${this.url}/schemas/ids/${id}`);
        if (res.status === 404) throw this.refuseId(id, `schema id ${id} is unknown to the registry`);
        if (!res.ok) throw new UnavailableError(`registry answered ${res.status} for schema id ${id}`);
        const body = (await res.json()) as { schema: string; schemaType?: string };
        if (body.schemaType && body.schemaType !== 'AVRO') throw this.refuseId(id, `schema id ${id} is ${body.schemaType}, not AVRO`);
        schemaJson = JSON.parse(body.schema);
      } catch (err) {
        if (err instanceof PenumbraError) throw err;
        throw new UnavailableError(`cannot fetch schema id ${id}: ${(err as Error).message}`, err);
      }
      writer = avro.Type.forSchema(schemaJson as avro.Schema);
      this.writers.set(id, writer);
    }
    const type = avroType(name);
    let reader: avro.Type | avro.Resolver;
    if (writer.equals(type)) reader = type;
    else {
      try {
        reader = type.createResolver(writer);
      } catch (err) {
        throw new DecodeError(`record written with schema id ${id} cannot be read as ${name}: ${(err as Error).message}`, err);
      }
    }
    this.readers.set(key, reader);
    return reader;
  }
}

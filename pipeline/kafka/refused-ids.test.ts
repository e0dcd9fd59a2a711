/**
 * AvroCodec asks the registry about an unknown schema id once, not once per record: garbage
 * on a topic (random ids) must not cost a registry round trip per record — that made a
 * processor's batch outlast its group session (pipeline/telemetry/slow-batch.int.test.ts).
 * The registry here is a stub that only counts lookups and answers 404, as the real one does
 * for an id it does not have.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { AvroCodec, DecodeError } from './registry.ts';

let server: http.Server;
const lookups: string[] = [];

beforeAll(async () => {
  server = http.createServer((req, res) => {
    lookups.push(req.url ?? '');
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error_code: 40403, message: 'Schema not found' }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
});
afterAll(async () => {
  await new Promise((r) => server.close(r));
});

const framed = (id: number, body: number[]) => {
  const b = Buffer.alloc(5 + body.length);
  b.writeInt32BE(id, 1);
  Buffer.from(body).copy(b, 5);
  return b;
};

test('an unknown schema id is a DecodeError every time, looked up once', async () => {
  const codec = new AvroCodec(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  for (let i = 0; i < 200; i++) {
    await expect(codec.decode('telemetry-event', framed(999_999_937, [i % 256, 1, 2]))).rejects.toThrow(DecodeError);
  }
  await expect(codec.decode('telemetry-event', framed(-1, [0]))).rejects.toThrow(/schema id -1 is unknown to the registry/);
  expect(lookups).toEqual(['/schemas/ids/999999937', '/schemas/ids/-1']);
});

import { rootMessage, singleFlight, withDeadline } from './probe.ts';

describe('withDeadline', () => {
  test('passes a value through when it arrives in time', async () => {
    await expect(withDeadline(Promise.resolve(7), 1000, 'x')).resolves.toBe(7);
  });
  test('rejects naming what timed out and after how long', async () => {
    await expect(withDeadline(new Promise(() => {}), 20, 'Kafka metadata request')).rejects.toThrow('Kafka metadata request timed out after 20 ms');
  });
  test('keeps the original rejection', async () => {
    await expect(withDeadline(Promise.reject(new Error('ECONNREFUSED')), 1000, 'x')).rejects.toThrow('ECONNREFUSED');
  });
});

describe('singleFlight', () => {
  test('callers during a call share it; a later caller starts a new one', async () => {
    let calls = 0;
    let release!: (v: number) => void;
    const ask = singleFlight(() => {
      calls++;
      return new Promise<number>((r) => (release = r));
    });
    const a = ask();
    const b = ask();
    expect(a).toBe(b);
    release(1);
    await expect(a).resolves.toBe(1);
    const c = ask();
    expect(c).not.toBe(a);
    expect(calls).toBe(2);
    release(2);
    await expect(c).resolves.toBe(2);
  });
  test('a failed call does not stick', async () => {
    let n = 0;
    const ask = singleFlight(async () => {
      if (n++ === 0) throw new Error('down');
      return 'up';
    });
    await expect(ask()).rejects.toThrow('down');
    await expect(ask()).resolves.toBe('up');
  });
});

describe('rootMessage', () => {
  test('walks kafkajs-style cause chains to the innermost message', () => {
    const inner = new Error('Connection error: connect ECONNREFUSED 127.0.0.1:9092');
    const outer = Object.assign(new Error('Number of retries exceeded'), { cause: Object.assign(new Error('wrapper'), { originalError: inner }) });
    expect(rootMessage(outer)).toBe('Connection error: connect ECONNREFUSED 127.0.0.1:9092');
  });
  test('non-errors become text', () => {
    expect(rootMessage('plain')).toBe('plain');
  });
});

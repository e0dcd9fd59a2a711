import { ChangeWaiters } from './change-waiters.ts';

describe('ChangeWaiters', () => {
  it('resolves at once when the check already holds', async () => {
    const w = new ChangeWaiters('thing');
    await expect(w.until(() => true, 10)).resolves.toBeUndefined();
  });

  it('resolves on the wake after which the check holds, and only the waiters whose check holds', async () => {
    const w = new ChangeWaiters('thing');
    let v = 0;
    const settled: string[] = [];
    const a = w.until(() => v >= 1, 1_000).then(() => settled.push('a'));
    const b = w.until(() => v >= 2, 1_000).then(() => settled.push('b'));
    w.wake();
    await Promise.resolve();
    expect(settled).toEqual([]);
    v = 1;
    w.wake();
    await a;
    expect(settled).toEqual(['a']);
    v = 2;
    w.wake();
    await b;
    expect(settled).toEqual(['a', 'b']);
  });

  it('rejects with what was not visible after the timeout, and forgets the waiter', async () => {
    const w = new ChangeWaiters('segment change');
    await expect(w.until(() => false, 20)).rejects.toThrow('segment change not visible yet');
    // A later wake must not touch the dropped waiter (it would resolve a settled promise).
    expect(() => w.wake()).not.toThrow();
  });
});

import { electHolder, leaseGroup, leaseTopic } from './lease.ts';

describe('electHolder (who gets the sink lease: partition 0 of the lease topic)', () => {
  test('nobody: no holder', () => {
    expect(electHolder([])).toBeNull();
  });
  test('sinks started at the same instant (no holder yet): exactly one, the smallest member id', () => {
    expect(electHolder([{ memberId: 'penumbra-b-2', holder: false }, { memberId: 'penumbra-a-9', holder: false }])).toBe('penumbra-a-9');
  });
  test('sticky: the holder keeps the lease when a sink with a smaller member id joins', () => {
    expect(electHolder([{ memberId: 'z-holder', holder: true }, { memberId: 'a-newcomer', holder: false }])).toBe('z-holder');
  });
  test('two claims (after a split): one of them, deterministically', () => {
    expect(electHolder([{ memberId: 'c', holder: true }, { memberId: 'b', holder: true }, { memberId: 'a', holder: false }])).toBe('b');
  });
  test('names follow the topic prefix', () => {
    expect([leaseTopic('p.'), leaseGroup('p.')]).toEqual(['p.warehouse-sink.lease', 'p.warehouse-sink-lease']);
  });
});

import { parallelScavengeOff } from './gc.ts';

describe('parallelScavengeOff', () => {
  it('auto turns parallel scavenging off on 2 cores or fewer only', () => {
    expect(parallelScavengeOff('auto', 1)).toBe(true);
    expect(parallelScavengeOff('auto', 2)).toBe(true);
    expect(parallelScavengeOff('auto', 4)).toBe(false);
  });
  it('true and false override the core count', () => {
    expect(parallelScavengeOff('true', 2)).toBe(false);
    expect(parallelScavengeOff('false', 16)).toBe(true);
  });
});

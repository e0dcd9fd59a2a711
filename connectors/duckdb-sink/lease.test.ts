import { electHolder, leaseGroup, leaseStep, leaseTopic, type LeaseEvent, type LeaseState } from './lease.ts';

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

describe('leaseStep (what a join or a crash of the lease consumer does to the sink)', () => {
  const join = (assigned: boolean): LeaseEvent => ({ kind: 'join', assigned });
  const crash = (restart: boolean): LeaseEvent => ({ kind: 'crash', restart, error: 'boom' });
  // Golden table: [state, event, next state, action].
  const cases: [LeaseState, LeaseEvent, LeaseState, string][] = [
    ['waiting', join(true), 'holding', 'acquired'],
    ['waiting', join(false), 'waiting', 'waiting'],
    ['waiting', crash(true), 'waiting', 'none'], // kafkajs restarts it; it joins again and waits
    ['waiting', crash(false), 'lost', 'failed'], // never held, never will: acquired rejects
    ['holding', join(true), 'holding', 'none'],
    ['holding', join(false), 'lost', 'lost'], // stalled past its session, another holds it
    ['holding', crash(true), 'paused', 'pause'], // left the group: stop writing, not for good
    ['holding', crash(false), 'lost', 'lost'],
    ['paused', join(true), 'holding', 'resume'], // restarted and holds partition 0 again
    ['paused', join(false), 'lost', 'lost'], // a standby took it over meanwhile
    ['paused', crash(true), 'paused', 'none'], // the restart crashed too: still paused
    ['paused', crash(false), 'lost', 'lost'],
    ['lost', join(true), 'lost', 'none'], // final: a lost lease never writes again
    ['lost', crash(true), 'lost', 'none'],
    ['released', join(true), 'released', 'none'],
    ['holding', { kind: 'release' }, 'released', 'none'],
    ['paused', { kind: 'release' }, 'released', 'none'],
  ];
  test.each(cases)('%s + %j -> %s (%s)', (state, ev, next, action) => {
    const step = leaseStep(state, ev);
    expect([step.state, step.action]).toEqual([next, action]);
  });
  test('a pause and a loss say why (the stats and the health check show it)', () => {
    expect(leaseStep('holding', crash(true)).why).toBe('lease consumer crashed and restarts: boom');
    expect(leaseStep('holding', crash(false)).why).toBe('lease consumer crashed and does not restart: boom');
    expect(leaseStep('paused', join(false)).why).toMatch(/took the lease over while the lease consumer restarted/);
  });
  test('never writing without the lease: only holding writes, and only acquired/resume lead there', () => {
    const states: LeaseState[] = ['waiting', 'holding', 'paused', 'lost', 'released'];
    const events: LeaseEvent[] = [join(true), join(false), crash(true), crash(false), { kind: 'release' }];
    for (const s of states) {
      for (const e of events) {
        const step = leaseStep(s, e);
        if (step.state === 'holding' && s !== 'holding') expect(['acquired', 'resume']).toContain(step.action);
        // A crash always leaves the group (kafkajs disconnects first): never holding after one.
        if (e.kind === 'crash') expect(step.state).not.toBe('holding');
      }
    }
  });
});

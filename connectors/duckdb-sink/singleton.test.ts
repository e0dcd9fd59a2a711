import { liveMembers } from './singleton.ts';

const m = (clientId: string, clientHost: string) => ({ clientId, clientHost, memberId: `${clientId}-1`, memberMetadata: Buffer.alloc(0), memberAssignment: Buffer.alloc(0) });

describe('liveMembers (the sink singleton guard decides on it)', () => {
  test.each(['Empty', 'Dead'])('%s group: nobody holds partitions', (state) => {
    expect(liveMembers({ state, members: [m('old', '/10.0.0.1')] })).toEqual([]);
  });
  test.each(['Stable', 'PreparingRebalance', 'CompletingRebalance', 'Unknown'])('%s group: its members count as a running sink', (state) => {
    expect(liveMembers({ state, members: [m('penumbra-a', '/10.0.0.1'), m('penumbra-b', '/10.0.0.2')] })).toEqual([
      { clientId: 'penumbra-a', clientHost: '/10.0.0.1' },
      { clientId: 'penumbra-b', clientHost: '/10.0.0.2' },
    ]);
  });
});

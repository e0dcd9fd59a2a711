/** Public surface of the event-time window core (pure; see README.md). */
export * from './types.ts';
export * from './classify.ts';
export * from './window-state.ts';
export * from './cumulative.ts';
export * from './window-aggregator.ts';

/** Public surface of the statistics core (pure functions; see README.md). */
export * from './distributions.ts';
export * from './hypothesis.ts';
export * from './ewma.ts';
export * from './compare.ts';
export * from './sequential.ts';

import { stackDown } from '../infra/stack.ts';

/** Stops the stack only when global-setup started it; a reused or external one is left alone. */
export default async function globalTeardown(): Promise<void> {
  const opts = globalThis.__PENUMBRA_TEST_STACK__;
  if (!opts) return;
  globalThis.__PENUMBRA_TEST_STACK__ = undefined;
  await stackDown(opts);
}

import { s3Down, stackDown } from '../infra/stack.ts';

/** Stops the stack only when global-setup started it; a reused or external one is left alone. */
export default async function globalTeardown(): Promise<void> {
  const s3 = globalThis.__PENUMBRA_TEST_S3__;
  globalThis.__PENUMBRA_TEST_S3__ = undefined;
  if (s3) await s3Down(s3);
  const opts = globalThis.__PENUMBRA_TEST_STACK__;
  if (!opts) return;
  globalThis.__PENUMBRA_TEST_STACK__ = undefined;
  await stackDown(opts);
}

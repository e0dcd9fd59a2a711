#!/usr/bin/env node
// Entry point of the `penumbra` CLI. Registers tsx (resolved relative to this package, not the
// caller's cwd) so the TypeScript sources run without a build step, then hands over.
import { register } from 'tsx/esm/api';
register();
const { main } = await import('../cli/main.ts');
process.exitCode = await main(process.argv.slice(2));

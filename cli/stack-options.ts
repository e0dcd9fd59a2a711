import path from 'node:path';
import type { PenumbraConfig } from '../pipeline/config/config.ts';
import type { StackOptions } from '../infra/stack.ts';

/** Local stack options derived from the one config (ports, data and cache folders). */
export function stackOptionsFor(cfg: PenumbraConfig, log?: (l: string) => void): StackOptions {
  return {
    dataDir: cfg.dataDir,
    cacheDir: path.join(cfg.cacheDir, 'stack'),
    kafkaPort: cfg.stack.kafkaPort,
    controllerPort: cfg.stack.controllerPort,
    registryPort: cfg.stack.registryPort,
    registryManagementPort: cfg.stack.registryManagementPort,
    log,
  };
}

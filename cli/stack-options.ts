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
    // S3Proxy only when S3 storage is configured without an endpoint of its own.
    s3Port: cfg.s3?.local ? cfg.stack.s3Port : undefined,
    log,
  };
}

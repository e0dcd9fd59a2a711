/**
 * Environment variable names Penumbra understands. Derived from the config module so the
 * docker-compose check and the config validation can never disagree about a name.
 */
import { ENV_VARS } from '../pipeline/config/config.ts';

export const KNOWN_ENV: readonly string[] = Object.freeze(Object.keys(ENV_VARS));

/** Names the compose file and the docs rely on; the compose test fails if config drops one. */
export const REQUIRED_ENV = [
  'KAFKA_BROKERS',
  'SCHEMA_REGISTRY_URL',
  'PENUMBRA_DATA_DIR',
  'PORT',
  'PENUMBRA_TOKENS',
  'PENUMBRA_TOPIC_PREFIX',
] as const;

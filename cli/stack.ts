import { loadConfig } from '../pipeline/config/config.ts';
import { stackCommand } from '../infra/cli.ts';
import { stackOptionsFor } from './stack-options.ts';

export async function stackCli(argv: string[]): Promise<number> {
  const cfg = loadConfig();
  return stackCommand(argv, stackOptionsFor(cfg, (l) => console.log(l)));
}

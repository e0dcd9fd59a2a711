/**
 * The rollout benchmark's load generator, run as a CHILD process (the benchmark rule: the load
 * generator runs outside the measured server). Argument: JSON SimulationOptions (without `log`).
 * Prints `{"event":"started","at":…}` when it starts and `{"event":"report",…}` (the
 * SimulationReport) when it ends — after its duration, or on SIGTERM.
 */
import { startSimulation, type SimulationOptions } from '../pipeline/simulator/runner.ts';

const opts = JSON.parse(process.argv[2] ?? '{}') as SimulationOptions;
const h = startSimulation(opts);
process.stdout.write(`${JSON.stringify({ event: 'started', at: Date.now() })}\n`);
let done = false;
const finish = async () => {
  if (done) return;
  done = true;
  const report = await h.stop();
  process.stdout.write(`${JSON.stringify({ event: 'report', report })}\n`);
  process.exit(0);
};
process.on('SIGTERM', () => void finish());
void h.done.then(finish);

import { parseStartArgs } from '../../cli/start.ts';
import { ConfigError } from '../errors.ts';

describe('penumbra start flags (cli/start.ts)', () => {
  test('no --role: PENUMBRA_ROLES decides (nothing parsed here)', () => {
    expect(parseStartArgs(['--no-console'])).toEqual({ demo: false, keepStack: false, noConsole: true });
  });
  test.each([
    [['--role', 'api'], { api: true, processors: false, sink: false }],
    [['--role=processors,sink'], { api: false, processors: true, sink: true }],
    [['--no-stack-stop', '--role', 'all'], { api: true, processors: true, sink: true }],
  ])('%p', (argv, roles) => {
    expect(parseStartArgs(argv).roles).toEqual(roles);
  });
  test.each([
    [['--role'], /--role needs a value/],
    [['--role', '--demo'], /--role needs a value/],
    [['--role='], /--role needs a value/],
    [['--role', 'web'], /--role: unknown role "web" \(known: api, processors, sink, all\)/],
    [['--role', 'sink', '--demo'], /--demo needs the api and processors roles/],
  ])('%p is refused with a ConfigError that says why', (argv, message) => {
    expect(() => parseStartArgs(argv)).toThrow(ConfigError);
    expect(() => parseStartArgs(argv)).toThrow(message);
  });
});

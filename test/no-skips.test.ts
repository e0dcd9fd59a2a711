/**
 * No test is skipped, left as a todo or focused by hand: the only skip is test/requires.ts's,
 * for a missing dependency, which names it (and fails under CI when npm test provides it).
 * A hand-written `it.skip` would pass silently forever; `.only` would silence the rest of a file.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

test('no it.skip / test.todo / describe.only / xit in the suite (test/requires.ts decides skips)', () => {
  const files = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', '*.ts'], { cwd: root, encoding: 'utf8' })
    .split('\n')
    .filter((f) => f && f !== 'test/requires.ts' && f !== 'test/no-skips.test.ts' && !f.startsWith('node_modules/'));
  expect(files.length).toBeGreaterThan(50);
  const found: string[] = [];
  for (const f of files) {
    const lines = readFileSync(path.join(root, f), 'utf8').split('\n');
    lines.forEach((line, i) => {
      if (/\b(it|test|describe)\.(skip|todo|only)\b|^\s*(x(it|test|describe)|f(it|describe))\s*\(/.test(line)) found.push(`${f}:${i + 1}: ${line.trim()}`);
    });
  }
  expect(found).toEqual([]);
});

/**
 * Writes the sample update bundle (sample-item.ts) as an archive:
 *   npx tsx pipeline/mobile/sample/make-sample.ts [out.zip|out.tar.gz] [--version 1.0.0] [--runtime 1.0.0] [--id com.example.notes.app]
 * then: penumbra ingest out.zip --shadow shadow.json
 */
import { writeFileSync } from 'node:fs';
import { writeArchive } from '../../shadowing/archive.ts';
import { manifestFromFiles } from '../../shadowing/manifest.ts';
import { sampleExpoFiles } from './sample-item.ts';

const args = process.argv.slice(2);
const opt = (name: string): string | undefined => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const out = args.find((a, i) => !a.startsWith('--') && !(i > 0 && args[i - 1].startsWith('--'))) ?? 'notes-update.zip';
const files = sampleExpoFiles({ version: opt('--version'), runtimeVersion: opt('--runtime'), id: opt('--id') });
const bytes = await writeArchive({ manifest: manifestFromFiles(files), files }, out.endsWith('.tar.gz') ? 'tar.gz' : 'zip');
writeFileSync(out, bytes);
console.log(`wrote ${out} (${bytes.length} bytes, ${files.size} files)`);

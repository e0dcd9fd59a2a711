import type { Penumbra } from '../pipeline/app/penumbra.ts';
export async function startDemo(_p: Penumbra, say: (l: string) => void): Promise<void> {
  say('demo: not wired yet');
}

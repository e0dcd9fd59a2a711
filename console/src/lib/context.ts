/** What every view needs: the API client, the live stream and who is signed in. */
import { getContext, setContext } from 'svelte';
import type { ApiClient } from './api.ts';
import type { LiveStore } from './live.ts';
import type { WhoAmI } from './types.ts';

export interface ConsoleContext {
  client: ApiClient;
  live: LiveStore;
  me: () => WhoAmI | null;
  canEdit: () => boolean;
  /** Flash a short status message in the polite live region. */
  announce: (msg: string) => void;
}
const KEY = Symbol('penumbra-console');
export function provideConsole(ctx: ConsoleContext): void { setContext(KEY, ctx); }
export function useConsole(): ConsoleContext { return getContext<ConsoleContext>(KEY); }

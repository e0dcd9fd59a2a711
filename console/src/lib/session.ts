/**
 * The operator token lives in sessionStorage (gone when the tab closes; never in localStorage
 * or a cookie). Sign-in checks it with `GET /whoami` before keeping it.
 */
import { ApiClient, ApiError } from './api.ts';
import type { WhoAmI } from './types.ts';

export const TOKEN_KEY = 'penumbra.token';

export interface KV { getItem(k: string): string | null; setItem(k: string, v: string): void; removeItem(k: string): void }

export function loadToken(store: KV | null | undefined): string | null {
  try { return store?.getItem(TOKEN_KEY) || null; } catch { return null; }
}

/** Validate the token; keeps it only when the server accepts it. */
export async function signIn(client: ApiClient, token: string, store: KV | null | undefined): Promise<WhoAmI> {
  const t = token.trim();
  if (!t) throw new ApiError({ status: 400, type: 'client/empty-token', title: 'Token required', detail: 'Paste the operator token printed by `npm start` or given to you.' });
  client.token = t;
  try {
    const me = await client.whoami();
    try { store?.setItem(TOKEN_KEY, t); } catch { /* storage disabled: session lasts this page only */ }
    return me;
  } catch (e) {
    client.token = null;
    if (e instanceof ApiError && (e.status === 401 || e.status === 403)) {
      throw new ApiError({ status: e.status, type: e.type, title: e.title, detail: 'That token was not accepted. Check it and try again.' });
    }
    throw e;
  }
}

export function signOut(client: ApiClient, store: KV | null | undefined): void {
  client.token = null;
  try { store?.removeItem(TOKEN_KEY); } catch { /* ignore */ }
}

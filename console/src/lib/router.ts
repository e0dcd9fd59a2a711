/** Hash routes: `#/`, `#/items/<id>[/config|/dashboard|/segments|/rollout]`, `#/alerts`, `#/audit?itemId=&actor=`, `#/segments`. */
export type ItemTab = 'overview' | 'config' | 'dashboard' | 'segments' | 'rollout';
export type Route =
  | { name: 'catalog'; q?: string }
  | { name: 'item'; itemId: string; tab: ItemTab }
  | { name: 'alerts'; itemId?: string }
  | { name: 'audit'; itemId?: string; actor?: string }
  | { name: 'segments' }
  | { name: 'notfound'; path: string };

export function parseHash(hash: string): Route {
  const h = hash.replace(/^#/, '') || '/';
  const [pathPart, query = ''] = h.split('?', 2);
  const qs = new URLSearchParams(query);
  const seg = pathPart.split('/').filter(Boolean).map((s) => { try { return decodeURIComponent(s); } catch { return s; } });
  if (seg.length === 0) return { name: 'catalog', q: qs.get('q') ?? undefined };
  if (seg[0] === 'items' && seg[1]) {
    const tab = seg[2] === 'config' || seg[2] === 'dashboard' || seg[2] === 'segments' || seg[2] === 'rollout' ? seg[2] : seg[2] === undefined ? 'overview' : null;
    if (tab && seg.length <= 3) return { name: 'item', itemId: seg[1], tab };
  }
  if (seg[0] === 'alerts' && seg.length === 1) return { name: 'alerts', itemId: qs.get('itemId') || undefined };
  if (seg[0] === 'segments' && seg.length === 1) return { name: 'segments' };
  if (seg[0] === 'audit' && seg.length === 1) return { name: 'audit', itemId: qs.get('itemId') || undefined, actor: qs.get('actor') || undefined };
  return { name: 'notfound', path: pathPart };
}

export function href(r: Route): string {
  switch (r.name) {
    case 'catalog': return r.q ? `#/?q=${encodeURIComponent(r.q)}` : '#/';
    case 'item': return `#/items/${encodeURIComponent(r.itemId)}${r.tab === 'overview' ? '' : '/' + r.tab}`;
    case 'alerts': return r.itemId ? `#/alerts?itemId=${encodeURIComponent(r.itemId)}` : '#/alerts';
    case 'audit': {
      const p = new URLSearchParams();
      if (r.itemId) p.set('itemId', r.itemId);
      if (r.actor) p.set('actor', r.actor);
      const s = p.toString();
      return s ? `#/audit?${s}` : '#/audit';
    }
    case 'segments': return '#/segments';
    case 'notfound': return '#/';
  }
}

export function routeTitle(r: Route): string {
  switch (r.name) {
    case 'catalog': return 'Catalog';
    case 'item': return r.tab === 'config' ? `Config · ${r.itemId}` : r.tab === 'dashboard' ? `Live · ${r.itemId}` : r.tab === 'segments' ? `By segment · ${r.itemId}` : r.tab === 'rollout' ? `Rollout · ${r.itemId}` : r.itemId;
    case 'alerts': return 'Alerts';
    case 'audit': return 'Audit log';
    case 'segments': return 'Segments';
    case 'notfound': return 'Not found';
  }
}

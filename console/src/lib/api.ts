/**
 * Typed client for the operator API (`/api/v1`). Reads: JSON bodies; errors:
 * application/problem+json (RFC 9457) turned into one `ApiError` with the field paths of
 * `errors[]`, so forms can show each message next to its field. The shadow-config ETag is
 * remembered per item and sent back as `If-Match` on PUT (a stale one comes back as 409 with
 * `current: {profileVersion, updatedBy, updatedAt}`).
 */
import type {
  Alert, AlertRule, AlertRuleInput, AuditEntry, Exposures, ItemView, MetricsResponse, PutShadowConfig,
  HistoryVersion, ResolverView, RiskView, RolloutView, Segment, SegmentAllocationView, SegmentInput, SegmentPreview, SegmentResultsView, SegmentStatusView, ShadowConfigView, UploadResult, WhoAmI,
} from './types.ts';

export interface FieldError { path: string; message: string }
export interface ConflictInfo { profileVersion?: number; updatedBy?: string; updatedAt?: number | string }

export class ApiError extends Error {
  readonly status: number;
  readonly type: string;
  readonly title: string;
  readonly detail: string;
  readonly errors: FieldError[];
  /** 409 only: who changed the profile and when. */
  readonly current?: ConflictInfo;
  /** Archive refusals: a stable reason code. */
  readonly reason?: string;
  constructor(p: { status: number; type?: string; title?: string; detail?: string; errors?: FieldError[]; current?: ConflictInfo; reason?: string }) {
    super(p.detail || p.title || `HTTP ${p.status}`);
    this.name = 'ApiError';
    this.status = p.status;
    this.type = p.type ?? 'about:blank';
    this.title = p.title ?? '';
    this.detail = p.detail ?? p.title ?? `HTTP ${p.status}`;
    this.errors = p.errors ?? [];
    this.current = p.current;
    this.reason = p.reason;
  }
  get isConflict(): boolean { return this.status === 409; }
  get isUnauthorized(): boolean { return this.status === 401; }
  /** Messages whose path equals `path` or sits under it (`shadows/0/traffic` ⊇ `shadows/0/traffic/percentage`). */
  fieldErrors(path: string): string[] {
    return this.errors.filter((e) => e.path === path || e.path.startsWith(path + '/')).map((e) => e.message);
  }
}

/** Parse any failed response into an ApiError; never throws while doing so. */
export async function toApiError(res: Response): Promise<ApiError> {
  const text = await res.text().catch(() => '');
  let body: Record<string, unknown> | null = null;
  try { body = text ? JSON.parse(text) : null; } catch { body = null; }
  if (body && typeof body === 'object') {
    const errors = Array.isArray(body.errors)
      ? (body.errors as unknown[]).map((e) => {
          const o = (e ?? {}) as Record<string, unknown>;
          return { path: String(o.path ?? ''), message: String(o.message ?? '') };
        })
      : [];
    return new ApiError({
      status: typeof body.status === 'number' ? body.status : res.status,
      type: typeof body.type === 'string' ? body.type : undefined,
      title: typeof body.title === 'string' ? body.title : res.statusText,
      detail: typeof body.detail === 'string' ? body.detail : (typeof body.message === 'string' ? body.message : undefined),
      errors,
      current: body.current && typeof body.current === 'object' ? (body.current as ConflictInfo) : undefined,
      reason: typeof body.reason === 'string' ? body.reason : undefined,
    });
  }
  return new ApiError({ status: res.status, title: res.statusText, detail: text.slice(0, 300) || `HTTP ${res.status} ${res.statusText}` });
}

export interface ApiClientOptions {
  /** Origin + prefix; default `/api/v1` (same origin). */
  baseUrl?: string;
  token?: string | null;
  fetch?: typeof fetch;
}

export type MetricsWindow = '10s' | '1m';

export class ApiClient {
  readonly baseUrl: string;
  token: string | null;
  private readonly fetchFn: typeof fetch;
  private readonly etags = new Map<string, string>();

  constructor(opts: ApiClientOptions = {}) {
    this.baseUrl = (opts.baseUrl ?? '/api/v1').replace(/\/$/, '');
    this.token = opts.token ?? null;
    this.fetchFn = opts.fetch ?? ((...a: Parameters<typeof fetch>) => fetch(...a));
  }

  private async request<T>(method: string, path: string, init: { body?: unknown; headers?: Record<string, string>; raw?: boolean } = {}): Promise<{ data: T; res: Response }> {
    const headers: Record<string, string> = { accept: 'application/json, application/problem+json', ...init.headers };
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    let body: BodyInit | undefined;
    if (init.body instanceof FormData) body = init.body;
    else if (init.body !== undefined) { body = JSON.stringify(init.body); headers['content-type'] = 'application/json'; }
    let res: Response;
    try {
      res = await this.fetchFn(this.baseUrl + path, { method, headers, body });
    } catch (e) {
      throw new ApiError({ status: 0, type: 'network', title: 'Network error', detail: `Cannot reach the API: ${(e as Error).message}` });
    }
    if (!res.ok) throw await toApiError(res);
    if (res.status === 204) return { data: undefined as T, res };
    const text = await res.text();
    try {
      return { data: (text ? JSON.parse(text) : undefined) as T, res };
    } catch {
      throw new ApiError({ status: res.status, type: 'bad-response', title: 'Bad response', detail: 'The API answered with something that is not JSON' });
    }
  }

  async whoami(): Promise<WhoAmI> { return (await this.request<WhoAmI>('GET', '/whoami')).data; }

  async listItems(q?: string): Promise<ItemView[]> {
    const qs = q ? `?q=${encodeURIComponent(q)}` : '';
    return (await this.request<{ items: ItemView[] }>('GET', `/items${qs}`)).data.items ?? [];
  }

  async getItem(itemId: string): Promise<ItemView> {
    return (await this.request<ItemView>('GET', `/items/${encodeURIComponent(itemId)}`)).data;
  }

  /** `shadowConfig` is sent as the raw JSON text the operator typed (the server validates it). */
  async uploadItem(file: Blob, fileName: string, shadowConfig?: string): Promise<UploadResult> {
    const form = new FormData();
    form.append('item', file, fileName);
    if (shadowConfig && shadowConfig.trim()) form.append('shadowConfig', shadowConfig);
    const { data } = await this.request<UploadResult>('POST', '/items', { body: form });
    if (data?.profile) this.etags.set(data.item.itemId, `"${data.profile.profileVersion}"`);
    return data;
  }

  async getShadowConfig(itemId: string): Promise<ShadowConfigView> {
    const { data, res } = await this.request<ShadowConfigView>('GET', `/items/${encodeURIComponent(itemId)}/shadow-config`);
    this.remember(itemId, res, data);
    return data;
  }

  /** The ETag this client last saw for the item (what the next PUT sends as If-Match). */
  etagOf(itemId: string): string | undefined { return this.etags.get(itemId); }

  /**
   * PUT with If-Match: the explicit `ifMatch` (a profile version or an ETag), else the
   * remembered ETag from the last GET/PUT. Throws ApiError 409 with `current` when stale.
   */
  async putShadowConfig(itemId: string, body: PutShadowConfig, ifMatch?: number | string): Promise<ShadowConfigView> {
    const tag = ifMatch === undefined ? this.etags.get(itemId) : typeof ifMatch === 'number' ? `"${ifMatch}"` : ifMatch;
    if (!tag) throw new ApiError({ status: 428, type: 'client/precondition', title: 'Precondition Required', detail: 'Load the shadow config before saving it (no ETag known)' });
    const { data, res } = await this.request<ShadowConfigView>('PUT', `/items/${encodeURIComponent(itemId)}/shadow-config`, { body, headers: { 'if-match': tag } });
    this.remember(itemId, res, data);
    return data;
  }

  async rollback(itemId: string, reason?: string): Promise<ShadowConfigView> {
    const { data, res } = await this.request<ShadowConfigView>('POST', `/items/${encodeURIComponent(itemId)}/rollback`, { body: reason ? { reason } : {} });
    this.remember(itemId, res, data);
    return data;
  }

  async activate(itemId: string, reason?: string): Promise<ShadowConfigView> {
    const { data, res } = await this.request<ShadowConfigView>('POST', `/items/${encodeURIComponent(itemId)}/activate`, { body: reason ? { reason } : {} });
    this.remember(itemId, res, data);
    return data;
  }

  async rolloutView(itemId: string): Promise<RolloutView> {
    return (await this.request<RolloutView>('GET', `/items/${encodeURIComponent(itemId)}/rollout`)).data;
  }

  /** pause | resume | skip | restart a shadow's plan. */
  async planAction(itemId: string, shadow: string, action: 'pause' | 'resume' | 'skip' | 'restart', reason?: string): Promise<RolloutView> {
    return (await this.request<RolloutView>('POST', `/items/${encodeURIComponent(itemId)}/shadows/${encodeURIComponent(shadow)}/rollout/${action}`, { body: reason ? { reason } : {} })).data;
  }

  /** Per-shadow rollback / activate / promote. */
  async shadowAction(itemId: string, shadow: string, action: 'rollback' | 'activate' | 'promote', reason?: string): Promise<RolloutView> {
    return (await this.request<RolloutView>('POST', `/items/${encodeURIComponent(itemId)}/shadows/${encodeURIComponent(shadow)}/${action}`, { body: reason ? { reason } : {} })).data;
  }

  async banditAction(itemId: string, action: 'pause' | 'resume' | 'stop' | 'restart'): Promise<RolloutView> {
    return (await this.request<RolloutView>('POST', `/items/${encodeURIComponent(itemId)}/bandit/${action}`, { body: {} })).data;
  }

  /** Per-segment allocation of the item's bandit (pipeline/segment-allocation). */
  async segmentAllocation(itemId: string): Promise<SegmentAllocationView> {
    return (await this.request<SegmentAllocationView>('GET', `/items/${encodeURIComponent(itemId)}/bandit/segments`)).data;
  }

  /** Fix one cell's weights (operator); the automated mode leaves the cell alone until released. */
  async overrideCell(itemId: string, cell: string, weights: Record<string, number>, reason?: string): Promise<SegmentAllocationView> {
    return (await this.request<SegmentAllocationView>('PUT', `/items/${encodeURIComponent(itemId)}/bandit/segments/${encodeURIComponent(cell)}`, { body: { weights, ...(reason ? { reason } : {}) } })).data;
  }

  async releaseCell(itemId: string, cell: string): Promise<SegmentAllocationView> {
    return (await this.request<SegmentAllocationView>('DELETE', `/items/${encodeURIComponent(itemId)}/bandit/segments/${encodeURIComponent(cell)}`, { body: {} })).data;
  }

  /** Profile versions with each shadow's configuration (from the audit log), newest first. */
  async history(itemId: string): Promise<HistoryVersion[]> {
    return (await this.request<{ versions: HistoryVersion[] }>('GET', `/items/${encodeURIComponent(itemId)}/history`)).data.versions ?? [];
  }

  /** Revert one shadow's configuration to the one it had at `profileVersion`. */
  async revertShadow(itemId: string, shadow: string, profileVersion: number): Promise<RolloutView> {
    return (await this.request<RolloutView>('POST', `/items/${encodeURIComponent(itemId)}/shadows/${encodeURIComponent(shadow)}/revert`, { body: { profileVersion } })).data;
  }

  async rollbackPromotion(itemId: string, reason?: string): Promise<RolloutView> {
    return (await this.request<RolloutView>('POST', `/items/${encodeURIComponent(itemId)}/promotion/rollback`, { body: reason ? { reason } : {} })).data;
  }

  async metrics(itemId: string, q: { window?: MetricsWindow; from?: number; to?: number } = {}): Promise<MetricsResponse> {
    const p = new URLSearchParams();
    if (q.window) p.set('window', q.window);
    if (q.from !== undefined) p.set('from', String(q.from));
    if (q.to !== undefined) p.set('to', String(q.to));
    const qs = p.toString();
    const { data } = await this.request<MetricsResponse>('GET', `/items/${encodeURIComponent(itemId)}/metrics${qs ? '?' + qs : ''}`);
    return { windows: data?.windows ?? [], comparisons: data?.comparisons ?? {}, unverified: data?.unverified ?? null, comparisonsSource: data?.comparisonsSource ?? 'none', comparisonsFreshness: data?.comparisonsFreshness ?? null };
  }

  async resolvers(): Promise<ResolverView[]> { return (await this.request<{ resolvers: ResolverView[] }>('GET', '/resolvers')).data.resolvers ?? []; }

  async exposures(itemId: string): Promise<Exposures> {
    return (await this.request<Exposures>('GET', `/exposures?itemId=${encodeURIComponent(itemId)}`)).data;
  }

  /** [#13] Risk scores of the item's versions (ingest and live updates) and early holds; empty when none yet. */
  async risk(itemId: string): Promise<RiskView> {
    try {
      const { data } = await this.request<Partial<RiskView>>('GET', `/items/${encodeURIComponent(itemId)}/risk`);
      return { scores: data.scores ?? [], holds: data.holds ?? [], plan: data.plan ?? null, forecast: { holdAt: data.forecast?.holdAt ?? null, shadows: data.forecast?.shadows ?? [], holds: data.forecast?.holds ?? [] }, earlyHolds: data.earlyHolds ?? [] };
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) return { scores: [], holds: [], plan: null, forecast: { holdAt: null, shadows: [], holds: [] }, earlyHolds: [] };
      throw e;
    }
  }

  /** [#13] Release the item's newest active early hold, risk or forecast (operator): its rollout step runs again. */
  async releaseRiskHold(itemId: string, reason?: string): Promise<{ kind?: 'risk' | 'forecast'; released: { shadow: string }; profile: ShadowConfigView }> {
    const { data, res } = await this.request<{ kind?: 'risk' | 'forecast'; released: { shadow: string }; profile: ShadowConfigView }>('POST', `/items/${encodeURIComponent(itemId)}/risk/release`, { body: reason ? { reason } : {} });
    if (data.profile) this.remember(itemId, res, data.profile);
    return data;
  }

  async alertRules(): Promise<AlertRule[]> { return (await this.request<{ rules: AlertRule[] }>('GET', '/alert-rules')).data.rules ?? []; }
  async createAlertRule(rule: AlertRuleInput): Promise<AlertRule> { return (await this.request<AlertRule>('POST', '/alert-rules', { body: rule })).data; }
  async updateAlertRule(id: string, rule: AlertRuleInput): Promise<AlertRule> {
    return (await this.request<AlertRule>('PUT', `/alert-rules/${encodeURIComponent(id)}`, { body: rule })).data;
  }
  async deleteAlertRule(id: string): Promise<void> { await this.request<void>('DELETE', `/alert-rules/${encodeURIComponent(id)}`); }

  async segments(): Promise<Segment[]> { return (await this.request<{ segments: Segment[] }>('GET', '/segments')).data.segments ?? []; }
  async createSegment(s: SegmentInput): Promise<Segment> { return (await this.request<Segment>('POST', '/segments', { body: s })).data; }
  async updateSegment(id: string, s: SegmentInput): Promise<Segment> { return (await this.request<Segment>('PUT', `/segments/${encodeURIComponent(id)}`, { body: s })).data; }
  async deleteSegment(id: string): Promise<void> { await this.request<void>('DELETE', `/segments/${encodeURIComponent(id)}`); }
  async previewSegment(sql: string): Promise<SegmentPreview> { return (await this.request<SegmentPreview>('POST', '/segments/preview', { body: { sql } })).data; }
  /** Shadow vs control per device type, country and segment (warehouse snapshot, Holm-corrected). */
  async segmentResults(itemId: string, q: { by?: string; from?: number; to?: number } = {}): Promise<SegmentResultsView> {
    const p = new URLSearchParams();
    if (q.by) p.set('by', q.by);
    if (q.from !== undefined) p.set('from', String(q.from));
    if (q.to !== undefined) p.set('to', String(q.to));
    const s = p.toString();
    return (await this.request<SegmentResultsView>('GET', `/items/${encodeURIComponent(itemId)}/metrics/segments${s ? `?${s}` : ''}`)).data;
  }
  async evaluateSegment(id: string): Promise<SegmentStatusView> { return (await this.request<SegmentStatusView>('POST', `/segments/${encodeURIComponent(id)}/evaluate`)).data; }

  async alerts(itemId?: string): Promise<Alert[]> {
    const qs = itemId ? `?itemId=${encodeURIComponent(itemId)}` : '';
    return (await this.request<{ alerts: Alert[] }>('GET', `/alerts${qs}`)).data.alerts ?? [];
  }

  async audit(q: { itemId?: string; actor?: string; limit?: number } = {}): Promise<AuditEntry[]> {
    const p = new URLSearchParams();
    if (q.itemId) p.set('itemId', q.itemId);
    if (q.actor) p.set('actor', q.actor);
    if (q.limit) p.set('limit', String(q.limit));
    const qs = p.toString();
    return (await this.request<{ entries: AuditEntry[] }>('GET', `/audit${qs ? '?' + qs : ''}`)).data.entries ?? [];
  }

  /**
   * EventSource cannot send headers, and a token in a URL ends up in proxy logs and history, so
   * the stream is opened with a single-use ticket (valid 30 s) that this call fetches with the
   * Authorization header. Call it again for every (re)connection.
   */
  async streamUrl(itemId?: string): Promise<string> {
    const { data } = await this.request<{ ticket: string; expiresAt: number }>('POST', '/stream/ticket');
    const p = new URLSearchParams({ ticket: data.ticket });
    if (itemId) p.set('itemId', itemId);
    return `${this.baseUrl}/stream?${p.toString()}`;
  }

  private remember(itemId: string, res: Response, data: { profileVersion?: number } | undefined): void {
    const tag = res.headers.get('etag') ?? (data?.profileVersion !== undefined ? `"${data.profileVersion}"` : null);
    if (tag) this.etags.set(itemId, tag);
  }
}

/** Which roles may change things. Viewers get a read-only console. */
export function canMutate(role: string | undefined | null): boolean {
  return role === 'operator' || role === 'admin';
}

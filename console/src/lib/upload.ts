/** Upload form model: local JSON check of the shadow-config text and routing server errors to fields. */
import type { FieldError } from './api.ts';

export const SHADOW_CONFIG_EXAMPLE = JSON.stringify({
  name: 'checkout-v2',
  instrumentation: { capture: { performance: true, errors: true, usage: true }, points: [{ id: 'buy', selector: '#buy', event: 'click' }], sampleRate: 1 },
  endpoints: {},
  traffic: { percentage: 10, match: 'all', rules: [{ attribute: 'deviceType', op: 'in', values: ['android'] }] },
}, null, 2);

/** Empty is allowed (upload without shadows); otherwise must be a JSON object or array. */
export function checkShadowConfigText(text: string): FieldError[] {
  if (!text.trim()) return [];
  try {
    const v = JSON.parse(text);
    if (typeof v !== 'object' || v === null) return [{ path: 'shadowConfig', message: 'Must be a JSON object (one shadow) or an array of them' }];
    return [];
  } catch (e) {
    return [{ path: 'shadowConfig', message: `Not valid JSON: ${(e as Error).message}` }];
  }
}

/** Split problem+json errors into the two fields of the form; anything else is general. */
export function routeUploadErrors(errors: readonly FieldError[], reason?: string): { file: string[]; config: string[]; general: string[] } {
  const out = { file: [] as string[], config: [] as string[], general: [] as string[] };
  for (const e of errors) {
    if (e.path === 'shadowConfig' || e.path.startsWith('shadowConfig/')) {
      const sub = e.path.slice('shadowConfig'.length).replace(/^\//, '');
      out.config.push(sub ? `${sub.replace(/\//g, ' › ')}: ${e.message}` : e.message);
    } else if (e.path === 'item' || e.path.startsWith('item/') || e.path.startsWith('manifest') || e.path.startsWith('archive')) {
      out.file.push(e.path === 'item' ? e.message : `${e.path}: ${e.message}`);
    } else out.general.push(e.path ? `${e.path}: ${e.message}` : e.message);
  }
  if (reason && out.file.length === 0) out.file.push(`Archive refused (${reason})`);
  return out;
}

/**
 * Pure derivation of the resolver's user attributes from request headers, for devices that do
 * not send them in the query (a browser following /launch, a thin native client).
 *
 * deviceType: User-Agent Client Hints first (`Sec-CH-UA-Platform`, the low-entropy hint every
 * Chromium sends; `Sec-CH-UA-Mobile` only disambiguates a "Linux" platform, which Android
 * builds with a reduced platform hint report), then the classic User-Agent string. Values are
 * the lowercase names the traffic rules use: android, ios, windows, macos, linux, chromeos,
 * else `other` (a User-Agent we do not recognise). No header → nothing derived.
 *
 * country: the first valid ISO 3166-1 alpha-2 code among the CDN/edge headers, in this order:
 * CF-IPCountry (Cloudflare), CloudFront-Viewer-Country, X-Vercel-IP-Country, X-Country-Code.
 * `XX` (Cloudflare: unknown) and `T1` (Cloudflare: Tor) carry no country and are skipped, as is
 * anything that is not two letters.
 *
 * The answer says which attribute was derived and from which header, so a device (and the
 * assignment record) can tell an explicit attribute from a guessed one.
 */

export type DeviceTypeSource = 'sec-ch-ua-platform' | 'user-agent';
export type CountrySource = 'cf-ipcountry' | 'cloudfront-viewer-country' | 'x-vercel-ip-country' | 'x-country-code';

export interface Derivation {
  deviceType?: DeviceTypeSource;
  country?: CountrySource;
}

/** Node's IncomingHttpHeaders shape: lowercase names, string or repeated values. */
export type HeaderBag = Record<string, string | string[] | undefined>;

export const COUNTRY_HEADERS: readonly CountrySource[] = ['cf-ipcountry', 'cloudfront-viewer-country', 'x-vercel-ip-country', 'x-country-code'];
const NO_COUNTRY = new Set(['XX', 'T1']);

function first(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/** Structured-header sf-string: `"macOS"` → `macOS` (quotes optional for lenient clients). */
function unquote(v: string): string {
  const t = v.trim();
  return t.length >= 2 && t.startsWith('"') && t.endsWith('"') ? t.slice(1, -1) : t;
}

const PLATFORM_HINTS: Record<string, string> = {
  android: 'android',
  ios: 'ios',
  windows: 'windows',
  macos: 'macos',
  linux: 'linux',
  'chrome os': 'chromeos',
  'chromium os': 'chromeos',
  chromeos: 'chromeos',
};

/** deviceType from `Sec-CH-UA-Platform` (+ `-Mobile`), or undefined when absent/"Unknown". */
export function deviceTypeFromHints(platform: string | undefined, mobile: string | undefined): string | undefined {
  if (platform === undefined) return undefined;
  const p = PLATFORM_HINTS[unquote(platform).toLowerCase()];
  if (p === 'linux' && mobile?.trim() === '?1') return 'android';
  return p;
}

/**
 * deviceType from a User-Agent string. Order matters: iOS and Android UAs also name Mac OS X /
 * Linux, and ChromeOS UAs say "X11; CrOS", so the specific platforms are tested first.
 */
export function deviceTypeFromUserAgent(ua: string): string {
  if (/\b(iPhone|iPad|iPod)\b/.test(ua)) return 'ios';
  if (/\bAndroid\b/i.test(ua)) return 'android';
  if (/\bCrOS\b/.test(ua)) return 'chromeos';
  if (/\bWindows\b/i.test(ua)) return 'windows';
  if (/\b(Macintosh|Mac OS X|macOS)\b/.test(ua)) return 'macos';
  if (/\b(Linux|X11)\b/i.test(ua)) return 'linux';
  return 'other';
}

/** Two-letter uppercase country code, or undefined for missing/invalid/`XX`/`T1`. */
export function normaliseCountry(raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined;
  const c = raw.trim().toUpperCase();
  if (!/^[A-Z]{2}$/.test(c) || NO_COUNTRY.has(c)) return undefined;
  return c;
}

export interface DeriveResult {
  deviceType?: string;
  country?: string;
  derived: Derivation;
}

/**
 * Fill deviceType/country from headers when `given` lacks them. Given values always win and
 * are never reported as derived.
 */
export function deriveAttributes(given: { deviceType?: string; country?: string }, headers: HeaderBag): DeriveResult {
  const derived: Derivation = {};
  let deviceType = given.deviceType;
  let country = given.country;
  if (deviceType === undefined) {
    const hinted = deviceTypeFromHints(first(headers['sec-ch-ua-platform']), first(headers['sec-ch-ua-mobile']));
    if (hinted !== undefined) {
      deviceType = hinted;
      derived.deviceType = 'sec-ch-ua-platform';
    } else {
      const ua = first(headers['user-agent']);
      if (ua !== undefined && ua.trim() !== '') {
        deviceType = deviceTypeFromUserAgent(ua);
        derived.deviceType = 'user-agent';
      }
    }
  }
  if (country === undefined) {
    for (const h of COUNTRY_HEADERS) {
      const c = normaliseCountry(first(headers[h]));
      if (c !== undefined) {
        country = c;
        derived.country = h;
        break;
      }
    }
  }
  return { deviceType, country, derived };
}

import { deriveAttributes, deviceTypeFromUserAgent, deviceTypeFromHints, normaliseCountry } from './derive.ts';

const UA = {
  iphone: 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1',
  ipad: 'Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1',
  ipod: 'Mozilla/5.0 (iPod touch; CPU iPhone OS 12_5 like Mac OS X) AppleWebKit/605.1.15',
  android: 'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Mobile Safari/537.36',
  windows: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36',
  mac: 'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15',
  linux: 'Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0',
  chromeos: 'Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36',
  curl: 'curl/8.5.0',
};

describe('deviceTypeFromUserAgent', () => {
  it.each([
    ['iphone', 'ios'], ['ipad', 'ios'], ['ipod', 'ios'], ['android', 'android'], ['windows', 'windows'],
    ['mac', 'macos'], ['linux', 'linux'], ['chromeos', 'chromeos'], ['curl', 'other'],
  ] as const)('%s → %s', (k, want) => {
    expect(deviceTypeFromUserAgent(UA[k])).toBe(want);
  });
});

describe('deviceTypeFromHints', () => {
  it('maps the quoted platform names Chromium sends', () => {
    expect(deviceTypeFromHints('"Android"', '?1')).toBe('android');
    expect(deviceTypeFromHints('"macOS"', '?0')).toBe('macos');
    expect(deviceTypeFromHints('"Windows"', undefined)).toBe('windows');
    expect(deviceTypeFromHints('"Chrome OS"', '?0')).toBe('chromeos');
    expect(deviceTypeFromHints('"Chromium OS"', '?0')).toBe('chromeos');
    expect(deviceTypeFromHints('"iOS"', '?1')).toBe('ios');
    expect(deviceTypeFromHints('"Linux"', '?0')).toBe('linux');
  });
  it('uses the mobile hint to tell an Android build reporting "Linux"', () => {
    expect(deviceTypeFromHints('"Linux"', '?1')).toBe('android');
  });
  it('gives nothing for Unknown or absent platforms', () => {
    expect(deviceTypeFromHints('"Unknown"', '?0')).toBeUndefined();
    expect(deviceTypeFromHints(undefined, '?1')).toBeUndefined();
  });
});

describe('normaliseCountry', () => {
  it('uppercases two-letter codes and refuses the rest', () => {
    expect(normaliseCountry('de')).toBe('DE');
    expect(normaliseCountry(' FR ')).toBe('FR');
    expect(normaliseCountry('XX')).toBeUndefined();
    expect(normaliseCountry('T1')).toBeUndefined();
    expect(normaliseCountry('t1')).toBeUndefined();
    expect(normaliseCountry('DEU')).toBeUndefined();
    expect(normaliseCountry('')).toBeUndefined();
    expect(normaliseCountry(undefined)).toBeUndefined();
  });
});

describe('deriveAttributes', () => {
  it('prefers client hints over the User-Agent and reports the source', () => {
    const r = deriveAttributes({}, { 'sec-ch-ua-platform': '"Windows"', 'user-agent': UA.android });
    expect(r.deviceType).toBe('windows');
    expect(r.derived).toEqual({ deviceType: 'sec-ch-ua-platform' });
  });
  it('falls back to the User-Agent when the hint is Unknown', () => {
    const r = deriveAttributes({}, { 'sec-ch-ua-platform': '"Unknown"', 'user-agent': UA.iphone });
    expect(r).toEqual({ deviceType: 'ios', country: undefined, derived: { deviceType: 'user-agent' } });
  });
  it('never overrides given values', () => {
    const r = deriveAttributes({ deviceType: 'tv', country: 'JP' }, { 'user-agent': UA.android, 'cf-ipcountry': 'DE' });
    expect(r).toEqual({ deviceType: 'tv', country: 'JP', derived: {} });
  });
  it('takes country headers in order, skipping XX/T1 and invalid values', () => {
    expect(deriveAttributes({}, { 'cf-ipcountry': 'de', 'x-country-code': 'FR' })).toMatchObject({ country: 'DE', derived: { country: 'cf-ipcountry' } });
    expect(deriveAttributes({}, { 'cf-ipcountry': 'XX', 'cloudfront-viewer-country': 'T1', 'x-vercel-ip-country': 'nl', 'x-country-code': 'FR' })).toMatchObject({ country: 'NL', derived: { country: 'x-vercel-ip-country' } });
    expect(deriveAttributes({}, { 'cf-ipcountry': 'T1', 'cloudfront-viewer-country': 'US' })).toMatchObject({ country: 'US', derived: { country: 'cloudfront-viewer-country' } });
    expect(deriveAttributes({}, { 'x-country-code': 'ZZZ' })).toEqual({ deviceType: undefined, country: undefined, derived: {} });
  });
  it('derives nothing without headers, and other for an unknown UA', () => {
    expect(deriveAttributes({}, {})).toEqual({ deviceType: undefined, country: undefined, derived: {} });
    expect(deriveAttributes({}, { 'user-agent': UA.curl })).toEqual({ deviceType: 'other', country: undefined, derived: { deviceType: 'user-agent' } });
  });
  it('reads the first of repeated headers', () => {
    expect(deriveAttributes({}, { 'cf-ipcountry': ['se', 'DE'] }).country).toBe('SE');
  });
});

import type { ShadowSpec } from '../domain/types.ts';
import { controlInstrumentation } from './control.ts';

const spec = (name: string, over: Partial<ShadowSpec['instrumentation']>, control?: boolean): ShadowSpec => ({
  name,
  endpoints: { api: `https://${name}.example.com` },
  traffic: { percentage: 10, match: 'all', rules: [] },
  instrumentation: { capture: { performance: false, errors: false, usage: false }, points: [], sampleRate: 0.1, ...over },
  ...(control === undefined ? {} : { control }),
});

describe('controlInstrumentation', () => {
  const a = spec('a', { capture: { performance: true, errors: false, usage: true }, points: [{ id: 'buy', selector: '#buy', event: 'click' }], sampleRate: 0.2 });
  const b = spec('b', { capture: { performance: false, errors: true, usage: false }, points: [{ id: 'buy', selector: '.other', event: 'click' }, { id: 'pay', selector: '#pay', event: 'submit' }], sampleRate: 0.5 });
  const off = spec('off', { points: [{ id: 'secret', selector: '#s', event: 'click' }], sampleRate: 1 }, false);

  it("gives a control session exactly its shadow's instrumentation", () => {
    expect(controlInstrumentation([a, b, off], 'b')).toEqual({ enabled: true, instrumentation: b.instrumentation });
  });

  it('turns off for a shadow without a control (or an unknown one)', () => {
    expect(controlInstrumentation([a, b, off], 'off').enabled).toBe(false);
    expect(controlInstrumentation([a, b, off], 'gone').enabled).toBe(false);
    expect(controlInstrumentation([off]).enabled).toBe(false);
  });

  it('without controlOf unites the shadows that have a control: flags OR-ed, points by id, highest sampling', () => {
    expect(controlInstrumentation([a, b, off])).toEqual({
      enabled: true,
      instrumentation: {
        capture: { performance: true, errors: true, usage: true },
        points: [{ id: 'buy', selector: '#buy', event: 'click' }, { id: 'pay', selector: '#pay', event: 'submit' }],
        sampleRate: 0.5,
      },
    });
  });
});

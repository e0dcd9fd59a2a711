/**
 * A tiny metrics registry rendered in the Prometheus text exposition format (version 0.0.4,
 * https://prometheus.io/docs/instrumenting/exposition_formats/), written by hand so the API
 * needs no client library. Three kinds: counters (monotonic), gauges (set, or computed by a
 * collector at scrape time) and histograms (cumulative `le` buckets plus `_sum` and `_count`).
 *
 * Collectors run before every render, so values that already live elsewhere (collector stats,
 * profile versions, consumer lag) are read at scrape time instead of being mirrored on every
 * change. A collector that throws is reported as `penumbra_metrics_collector_errors_total` and
 * never fails the scrape: /metrics must keep answering while a dependency is down.
 */

export type Labels = Record<string, string | number>;

type Kind = 'counter' | 'gauge' | 'histogram';

interface Family {
  name: string;
  help: string;
  kind: Kind;
  /** Serialised label set → value (counters, gauges). */
  values: Map<string, number>;
  /** Serialised label set → bucket counts, sum, count (histograms). */
  hist: Map<string, { buckets: number[]; sum: number; count: number }>;
  buckets: number[];
}

const NAME_RE = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_RE = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** Default latency buckets in seconds: 1 ms … 10 s. */
export const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Label values escape backslash, double quote and newline (exposition format rule). */
export function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function labelKey(labels: Labels | undefined): string {
  if (!labels) return '';
  const keys = Object.keys(labels).sort();
  for (const k of keys) if (!LABEL_RE.test(k)) throw new Error(`invalid metric label name ${k}`);
  return keys.map((k) => `${k}="${escapeLabelValue(String(labels[k]))}"`).join(',');
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

export interface Counter {
  inc(labels?: Labels, by?: number): void;
}
export interface Gauge {
  set(labels: Labels | undefined, value: number): void;
  /** Drop every series (a collector re-fills the gauge from scratch each scrape). */
  reset(): void;
}
export interface Histogram {
  observe(labels: Labels | undefined, value: number): void;
  /** An observer for one fixed label set (the label key is built once: hot paths). */
  series(labels: Labels | undefined): (value: number) => void;
}

export class MetricsRegistry {
  private readonly families = new Map<string, Family>();
  private readonly collectors: (() => Promise<void> | void)[] = [];
  private collectorErrors = 0;

  private family(name: string, help: string, kind: Kind, buckets: number[] = []): Family {
    if (!NAME_RE.test(name)) throw new Error(`invalid metric name ${name}`);
    const existing = this.families.get(name);
    if (existing) {
      if (existing.kind !== kind) throw new Error(`metric ${name} already registered as a ${existing.kind}`);
      return existing;
    }
    const f: Family = { name, help, kind, values: new Map(), hist: new Map(), buckets: [...buckets].sort((a, b) => a - b) };
    this.families.set(name, f);
    return f;
  }

  counter(name: string, help: string): Counter {
    const f = this.family(name, help, 'counter');
    return {
      inc(labels, by = 1) {
        if (!(by >= 0)) throw new Error(`counter ${name} can only increase`);
        const k = labelKey(labels);
        f.values.set(k, (f.values.get(k) ?? 0) + by);
      },
    };
  }

  gauge(name: string, help: string): Gauge {
    const f = this.family(name, help, 'gauge');
    return {
      set(labels, value) {
        f.values.set(labelKey(labels), value);
      },
      reset() {
        f.values.clear();
      },
    };
  }

  /**
   * A counter whose value is owned elsewhere (e.g. a stats object counting since start) and
   * copied in by a collector at scrape time; typed `counter` in the exposition.
   */
  observedCounter(name: string, help: string): Gauge {
    const f = this.family(name, help, 'counter');
    return {
      set(labels, value) {
        f.values.set(labelKey(labels), value);
      },
      reset() {
        f.values.clear();
      },
    };
  }

  histogram(name: string, help: string, buckets: number[] = LATENCY_BUCKETS): Histogram {
    const f = this.family(name, help, 'histogram', buckets);
    const slot = (k: string) => {
      let h = f.hist.get(k);
      if (!h) f.hist.set(k, (h = { buckets: f.buckets.map(() => 0), sum: 0, count: 0 }));
      return h;
    };
    const add = (h: { buckets: number[]; sum: number; count: number }, value: number) => {
      // Stored per bucket (non-cumulative); render() accumulates.
      const i = f.buckets.findIndex((b) => value <= b);
      if (i >= 0) h.buckets[i]++;
      h.sum += value;
      h.count++;
    };
    return {
      observe(labels, value) {
        add(slot(labelKey(labels)), value);
      },
      series(labels) {
        const h = slot(labelKey(labels));
        return (value) => add(h, value);
      },
    };
  }

  /** Run `fn` before every render (fill gauges from live state). */
  addCollector(fn: () => Promise<void> | void): void {
    this.collectors.push(fn);
  }

  /** The whole registry in the text exposition format. */
  async render(): Promise<string> {
    const results = await Promise.allSettled(this.collectors.map(async (c) => c()));
    this.collectorErrors += results.filter((r) => r.status === 'rejected').length;
    const out: string[] = [];
    const fams = [...this.families.values()];
    fams.push({ name: 'penumbra_metrics_collector_errors_total', help: 'Scrape-time collectors that failed (the scrape still answers)', kind: 'counter', values: new Map([['', this.collectorErrors]]), hist: new Map(), buckets: [] });
    for (const f of fams) {
      out.push(`# HELP ${f.name} ${escapeHelp(f.help)}`);
      out.push(`# TYPE ${f.name} ${f.kind}`);
      if (f.kind !== 'histogram') {
        for (const [k, v] of f.values) out.push(`${f.name}${k ? `{${k}}` : ''} ${formatValue(v)}`);
        continue;
      }
      for (const [k, h] of f.hist) {
        const sep = k ? `${k},` : '';
        let cum = 0;
        f.buckets.forEach((b, i) => {
          cum += h.buckets[i];
          out.push(`${f.name}_bucket{${sep}le="${formatValue(b)}"} ${cum}`);
        });
        out.push(`${f.name}_bucket{${sep}le="+Inf"} ${h.count}`);
        out.push(`${f.name}_sum${k ? `{${k}}` : ''} ${formatValue(h.sum)}`);
        out.push(`${f.name}_count${k ? `{${k}}` : ''} ${h.count}`);
      }
    }
    return `${out.join('\n')}\n`;
  }
}

/**
 * Parse the text format back into samples (`name{labels}` → value). Used by tests and by
 * anyone checking a scrape without Prometheus; it understands exactly what render() writes.
 */
export function parseExposition(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{.*\})?) (\S+)$/.exec(line);
    if (!m) throw new Error(`not an exposition sample: ${line}`);
    const v = m[2] === '+Inf' ? Infinity : m[2] === '-Inf' ? -Infinity : Number(m[2]);
    out.set(m[1], v);
  }
  return out;
}

/** Structured JSON logs on stderr (one object per line), filtered by level. */
export type Logger = (msg: string, extra?: Record<string, unknown>) => void;
const RANK = { debug: 10, info: 20, warn: 30, error: 40 } as const;

export function createLogger(component: string, level: keyof typeof RANK = 'info'): { debug: Logger; info: Logger; warn: Logger; error: Logger } {
  const make = (l: keyof typeof RANK): Logger => (msg, extra) => {
    if (RANK[l] < RANK[level]) return;
    process.stderr.write(`${JSON.stringify({ t: new Date().toISOString(), level: l, component, msg, ...extra })}\n`);
  };
  return { debug: make('debug'), info: make('info'), warn: make('warn'), error: make('error') };
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** The longest delay a Node timer can wait: about 24.8 days. */
export const MAX_DURATION_MS = 2_147_483_647;

export const DURATION_FORMS = 'a duration such as 500ms, 30s, 2m, 1h or bare seconds';

/** Parses `500ms`, `30s`, `2m`, `1h` or bare seconds (`45`, `1.5`) into milliseconds. */
export function parseDuration(text: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (match === null) throw new Error(`expected ${DURATION_FORMS}`);
  const [, amount = '', unit = 's'] = match;
  const ms = Math.round(Number(amount) * (UNIT_MS[unit] ?? 1000));
  if (ms > MAX_DURATION_MS) throw new Error('longer than the maximum of 24 days');
  return ms;
}

/** Renders milliseconds the way the log and --help show them: `30s`, `500ms`, `2.5s`. */
export function formatDuration(ms: number): string {
  if (ms % 1000 !== 0 && ms < 1000) return `${ms}ms`;
  return `${Number((ms / 1000).toFixed(3))}s`;
}

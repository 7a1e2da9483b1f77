// What drain-init logs through, and how it chooses its level and format. Nothing here loads pino
// (log/pino.ts does): the worker is started before the logger is ready, its lines held until then.

/** One way of logging: fields and a message, or a message alone. */
export interface LogFn {
  (fields: object, message?: string): void;
  (message: string): void;
}

/** The levels drain-init logs at (pino's logger is one). */
export interface Logger {
  readonly debug: LogFn;
  readonly info: LogFn;
  readonly warn: LogFn;
  readonly error: LogFn;
}

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export const LOG_FORMATS = ['json', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

const LEVEL_NAMES: Readonly<Record<number, string>> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO',
  40: 'WARN',
  50: 'ERROR',
  60: 'FATAL',
};
const HIDDEN_FIELDS = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'name']);

/** Turns one pino JSON line into `2026-11-22T06:40:00.123Z INFO  forwarded signal signal=SIGUSR1 pid=42`. */
export function prettyLine(jsonLine: string): string {
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(jsonLine) as Record<string, unknown>;
  } catch {
    return jsonLine;
  }
  const time = typeof record.time === 'number' ? new Date(record.time).toISOString() : '';
  const level = (LEVEL_NAMES[Number(record.level)] ?? 'LOG').padEnd(5);
  const fields = Object.entries(record)
    .filter(([key]) => !HIDDEN_FIELDS.has(key))
    .map(([key, value]) => `${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`);
  return `${[time, level, String(record.msg ?? ''), ...fields].join(' ')}\n`;
}

export interface LoggingChoice {
  /** Unset: info, or warn for readable lines on a terminal. */
  readonly logLevel: LogLevel | undefined;
  /** Unset: pretty on a terminal, else json. */
  readonly logFormat: LogFormat | undefined;
  /** -v given this many times. */
  readonly verbosity: number;
}

/**
 * What to log and how: JSON lines for log collectors; on a terminal (`docker run -it`) readable lines at
 * warn, so that a normal start and exit print nothing, as tini prints nothing. An explicit choice wins.
 */
export function loggingFor(choice: LoggingChoice, stderrIsTerminal: boolean): { level: LogLevel; format: LogFormat } {
  const format = choice.logFormat ?? (stderrIsTerminal ? 'pretty' : 'json');
  const quietTerminal = stderrIsTerminal && choice.logFormat === undefined;
  const level = choice.logLevel ?? (quietTerminal ? 'warn' : 'info');
  return { level: moreVerbose(level, choice.verbosity), format };
}

function moreVerbose(level: LogLevel, steps: number): LogLevel {
  const index = LOG_LEVELS.indexOf(level);
  if (level === 'silent' || steps === 0) return level;
  return LOG_LEVELS[Math.max(0, index - steps)] ?? 'trace';
}

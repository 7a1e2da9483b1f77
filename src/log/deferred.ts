// The logger drain-init starts with: the worker starts before pino is loaded (log/pino.ts), so the lines
// logged until then are held, each with its time, and written by pino once it is ready.
import type { LogFn, Logger } from './logger.js';

type Level = keyof Logger;
type LogArgs = [fields: object, message?: string | undefined] | [message: string];

interface HeldLine {
  readonly level: Level;
  readonly args: LogArgs;
  readonly timeMs: number;
}

export class DeferredLogger implements Logger {
  #target: Logger | undefined;
  readonly #held: HeldLine[] = [];
  /** The time of the held line being written, while it is. */
  #writingHeldAt: number | undefined;

  readonly debug: LogFn = (...args: LogArgs) => this.#log('debug', args);
  readonly info: LogFn = (...args: LogArgs) => this.#log('info', args);
  readonly warn: LogFn = (...args: LogArgs) => this.#log('warn', args);
  readonly error: LogFn = (...args: LogArgs) => this.#log('error', args);

  /** `now`: ms since the epoch. */
  constructor(private readonly now: () => number = Date.now) {}

  /**
   * `make` builds the logger that writes from now on, with the clock it must stamp lines with: the held
   * lines are written first, in order, each with the time it was logged at. Call once.
   */
  ready(make: (now: () => number) => Logger): void {
    const target = make(() => this.#writingHeldAt ?? this.now());
    for (const line of this.#held.splice(0)) {
      this.#writingHeldAt = line.timeMs;
      write(target, line.level, line.args);
    }
    this.#writingHeldAt = undefined;
    this.#target = target;
  }

  #log(level: Level, args: LogArgs): void {
    if (this.#target === undefined) this.#held.push({ level, args, timeMs: this.now() });
    else write(this.#target, level, args);
  }
}

function write(log: Logger, level: Level, args: LogArgs): void {
  const [first, message] = args;
  if (typeof first === 'string') log[level](first);
  else log[level](first, message);
}

import type { Logger } from '../log/logger.js';
import { FORWARDED_SIGNALS, signalName, signalNumber } from './signals.js';

export interface ForwardOptions {
  /** Received signal number to the number passed on instead; 0 drops it. */
  readonly rewrite: ReadonlyMap<number, number>;
  /** Send forwarded signals to the child's process group rather than the child alone. */
  readonly processGroup: boolean;
}

/**
 * Decides what a received signal (after rewriting) does. Returns true when it took the signal
 * over (the stop sequence does this for TERM and INT); otherwise the signal is forwarded.
 */
export type SignalInterceptor = (signal: number) => boolean;

/** Installs a handler for every catchable signal and passes each one on to the child. */
export class SignalForwarder {
  readonly #handlers = new Map<NodeJS.Signals, () => void>();
  readonly #forwardedCounts = new Map<NodeJS.Signals, number>();
  #childPid: number | undefined;

  constructor(
    private readonly options: ForwardOptions,
    private readonly log: Logger,
    private readonly intercept: SignalInterceptor = () => false,
  ) {}

  /** Signals forwarded so far, by name. */
  get forwardedCounts(): ReadonlyMap<NodeJS.Signals, number> {
    return this.#forwardedCounts;
  }

  install(): void {
    for (const name of FORWARDED_SIGNALS) {
      const handler = () => this.#receive(name);
      this.#handlers.set(name, handler);
      process.on(name, handler);
    }
  }

  uninstall(): void {
    for (const [name, handler] of this.#handlers) process.off(name, handler);
    this.#handlers.clear();
  }

  attach(childPid: number | undefined): void {
    this.#childPid = childPid;
  }

  /** Sends a signal to the child, or to its process group with -g (or when `group` says so). */
  send(signal: number, group = this.options.processGroup): boolean {
    const pid = this.#childPid;
    if (pid === undefined) return false;
    const name = signalName(signal);
    try {
      process.kill(group ? -pid : pid, name);
      return true;
    } catch (error) {
      this.log.debug({ signal: name, childPid: pid, err: (error as Error).message }, 'could not send signal: child already gone');
      return false;
    }
  }

  #receive(name: NodeJS.Signals): void {
    const received = signalNumber(name);
    const signal = this.options.rewrite.get(received) ?? received;
    if (signal === 0) {
      this.log.info({ signal: name }, 'received signal, dropped by --rewrite');
      return;
    }
    if (this.intercept(signal)) return;
    const sent = signalName(signal);
    const fields = { signal: name, ...(signal === received ? {} : { rewrittenTo: sent }), childPid: this.#childPid, processGroup: this.options.processGroup };
    if (this.send(signal)) {
      this.#forwardedCounts.set(sent, (this.#forwardedCounts.get(sent) ?? 0) + 1);
      this.log.info(fields, 'forwarded signal');
    } else {
      this.log.info(fields, 'received signal, no child to forward it to');
    }
  }
}

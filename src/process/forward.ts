import type { Logger } from '../log/logger.js';
import { FORWARDED_SIGNALS, signalName, signalNumber } from './signals.js';

export interface ForwardOptions {
  /** Received signal number to the number passed on instead; 0 drops it. */
  readonly rewrite: ReadonlyMap<number, number>;
  /** Send forwarded signals to the child's process group rather than the child alone. */
  readonly processGroup: boolean;
  /** The native addon's part, when it is loaded. */
  readonly native?: NativeSignals | undefined;
}

/** What Node cannot do for the forwarder (see drain_init.c). */
export interface NativeSignals {
  /** Lets a real fault kill drain-init, though it handles SIGSEGV and the like when sent with kill. */
  guardFaultSignals(): void;
  /** Forwards the real-time signals, which Node cannot listen for, to a pid (negative: a group); 0 drops them. */
  forwardRealtimeSignals(target: number): void;
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

  #intercept: SignalInterceptor = () => false;

  constructor(
    private readonly options: ForwardOptions,
    private readonly log: Logger,
  ) {}

  /** Signals forwarded so far, by name. */
  get forwardedCounts(): ReadonlyMap<NodeJS.Signals, number> {
    return this.#forwardedCounts;
  }

  /** Starts handling every forwarded signal; `intercept` sees each one first (after --rewrite). */
  install(intercept: SignalInterceptor = () => false): void {
    this.#intercept = intercept;
    for (const name of FORWARDED_SIGNALS) {
      const handler = () => this.#receive(name);
      this.#handlers.set(name, handler);
      process.on(name, handler);
    }
    this.options.native?.guardFaultSignals();
  }

  uninstall(): void {
    for (const [name, handler] of this.#handlers) process.off(name, handler);
    this.#handlers.clear();
  }

  attach(childPid: number | undefined): void {
    this.#childPid = childPid;
    const target = childPid === undefined ? 0 : this.options.processGroup ? -childPid : childPid;
    this.options.native?.forwardRealtimeSignals(target);
  }

  /** Sends a signal to the child, or to its process group with -g (or when `group` says so). */
  send(signal: number, group = this.options.processGroup): boolean {
    const pid = this.#childPid;
    if (pid === undefined) return false;
    return this.sendTo(group ? -pid : pid, signal);
  }

  /** Sends a signal to one process (or a group, as a negative pid) of the supervised tree. */
  sendTo(pid: number, signal: number): boolean {
    const name = signalName(signal);
    try {
      process.kill(pid, name);
      return true;
    } catch (error) {
      this.log.debug(
        { signal: name, pid, err: (error as Error).message },
        'could not send signal: process already gone',
      );
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
    if (this.#intercept(signal)) return;
    const sent = signalName(signal);
    const fields = {
      signal: name,
      ...(signal === received ? {} : { rewrittenTo: sent }),
      childPid: this.#childPid,
      processGroup: this.options.processGroup,
    };
    if (this.send(signal)) {
      this.#forwardedCounts.set(sent, (this.#forwardedCounts.get(sent) ?? 0) + 1);
      this.log.info(fields, 'forwarded signal');
    } else {
      this.log.info(fields, 'received signal, no child to forward it to');
    }
  }
}

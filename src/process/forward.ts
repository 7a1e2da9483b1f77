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
  /** Forwards these signals (received, sent) and the real-time ones from the signal handler; [] stops it. */
  forwardSignals(routes: readonly (readonly [received: number, sent: number])[]): void;
  /** Where the handler forwards to: a pid, a group as a negative number, 0 nowhere. */
  setForwardTarget(target: number): void;
  /** How many times the handler has forwarded this received signal. */
  forwardedCount(received: number): number;
}

/** Whether a received signal (after --rewrite) may be taken over (the stop and restart signals). */
export type MayTake = (signal: number) => boolean;

/** Returns true when it took the signal over (a stop, a restart); otherwise the signal is forwarded. */
export type Intercept = (signal: number) => boolean;

/**
 * The signals passed on from the signal handler, before JavaScript hears of them, as [received, sent]:
 * all but those --rewrite drops and those that may be taken over (after rewriting).
 */
export function nativeRoutes(
  signals: readonly number[],
  rewrite: ReadonlyMap<number, number>,
  mayTake: (signal: number) => boolean,
): [received: number, sent: number][] {
  return signals.flatMap((received): [number, number][] => {
    const sent = rewrite.get(received) ?? received;
    return sent === 0 || mayTake(sent) ? [] : [[received, sent]];
  });
}

/**
 * Installs a handler for every catchable signal and passes each one on to the child. With the native
 * addon the signal handler forwards them itself, as fast as tini, and JavaScript only logs and counts
 * them afterwards; the signals that may be taken over (a stop, a restart) always go through JavaScript.
 * The handlers are installed before the worker starts and before the rest of drain-init is loaded: what
 * JavaScript hears until the stop sequence takes over is held, and dealt with then, in order.
 */
export class SignalForwarder {
  readonly #handlers = new Map<NodeJS.Signals, () => void>();
  readonly #forwardedCounts = new Map<NodeJS.Signals, number>();
  /** Received signals the native handler forwards, with how many of its forwards were accounted for so far. */
  readonly #nativelyForwarded = new Map<number, number>();
  #childPid: number | undefined;

  #mayTake: MayTake = () => false;
  /** Unset until takeOver: the signals received until then are held. */
  #intercept: Intercept | undefined;
  readonly #held: NodeJS.Signals[] = [];

  constructor(
    private readonly options: ForwardOptions,
    private readonly log: Logger,
  ) {}

  /** Signals forwarded so far, by name. */
  get forwardedCounts(): ReadonlyMap<NodeJS.Signals, number> {
    return this.#forwardedCounts;
  }

  /**
   * Starts handling every forwarded signal; those `mayTake` names (after --rewrite) are never forwarded by
   * the native handler, and what JavaScript hears is held until takeOver.
   */
  install(mayTake: MayTake): void {
    this.#mayTake = mayTake;
    for (const name of FORWARDED_SIGNALS) {
      const handler = () => this.#receive(name);
      this.#handlers.set(name, handler);
      process.on(name, handler);
    }
    const { native } = this.options;
    if (native === undefined) return;
    native.guardFaultSignals();
    const routes = nativeRoutes(FORWARDED_SIGNALS.map(signalNumber), this.options.rewrite, mayTake);
    native.forwardSignals(routes);
    for (const [received] of routes) this.#nativelyForwarded.set(received, native.forwardedCount(received));
  }

  /** `intercept` sees the signals that may be taken over from now on, and first those held so far (the others held are forwarded). */
  takeOver(intercept: Intercept): void {
    this.#intercept = intercept;
    for (const name of this.#held.splice(0)) this.#receive(name);
  }

  uninstall(): void {
    this.options.native?.forwardSignals([]);
    this.#nativelyForwarded.clear();
    for (const [name, handler] of this.#handlers) process.off(name, handler);
    this.#handlers.clear();
  }

  /** The worker it forwards to, once attached. */
  get childPid(): number | undefined {
    return this.#childPid;
  }

  attach(childPid: number | undefined): void {
    this.#childPid = childPid;
    this.options.native?.setForwardTarget(childPid === undefined ? 0 : this.#target(childPid));
  }

  #target(childPid: number, group = this.options.processGroup): number {
    return group ? -childPid : childPid;
  }

  /** Sends a signal to the child, or to its process group with -g (or when `group` says so). */
  send(signal: number, group = this.options.processGroup): boolean {
    const pid = this.#childPid;
    if (pid === undefined) return false;
    return this.sendTo(this.#target(pid, group), signal);
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
    const intercept = this.#intercept;
    if (intercept === undefined) {
      this.#held.push(name);
      return;
    }
    if (this.#mayTake(signal) && intercept(signal)) return;
    // The handler forwards nothing before the child's pid is known (from spawn to attach): JS does then.
    const byHandler = this.#forwardedByHandler(received);
    const sent = signalName(signal);
    const fields = {
      signal: name,
      ...(signal === received ? {} : { rewrittenTo: sent }),
      childPid: this.#childPid,
      processGroup: this.options.processGroup,
    };
    if (byHandler || this.send(signal)) {
      this.#forwardedCounts.set(sent, (this.#forwardedCounts.get(sent) ?? 0) + 1);
      this.log.info(fields, 'forwarded signal');
    } else {
      this.log.info(fields, 'received signal, no child to forward it to');
    }
  }

  /** Whether the signal handler forwarded this signal: each of its forwards is accounted for once, in order. */
  #forwardedByHandler(received: number): boolean {
    const accounted = this.#nativelyForwarded.get(received);
    if (accounted === undefined || (this.options.native?.forwardedCount(received) ?? 0) <= accounted) return false;
    this.#nativelyForwarded.set(received, accounted + 1);
    return true;
  }
}

// Time, injected: every timer, timeout race and reading of the clock in drain-init goes through a Clock, so
// the parts with time in them are unit-tested with a clock driven by hand (test/helpers/fake.ts).

/** Cancels what `schedule` or `every` set up; calling it twice is harmless. */
export type Cancel = () => void;

export interface Clock {
  /** Monotonic milliseconds (performance.now() for the real clock). */
  now(): number;
  /** Wall-clock milliseconds since the epoch (Date.now()): only for comparing with times others wrote. */
  epochMs(): number;
  /**
   * Runs `action` once after `delayMs`. A pending timer keeps drain-init alive only with `keepAlive` (the
   * stop's steps, a restart's delay); background work (polls, heartbeats) never does.
   */
  schedule(delayMs: number, action: () => void, keepAlive?: boolean): Cancel;
  /** Runs `action` every `intervalMs`, the first time after one interval. */
  every(intervalMs: number, action: () => void): Cancel;
}

export const systemClock: Clock = {
  now: () => performance.now(),
  epochMs: () => Date.now(),
  schedule(delayMs, action, keepAlive = false) {
    const timer = setTimeout(action, delayMs);
    if (!keepAlive) timer.unref();
    return () => clearTimeout(timer);
  },
  every(intervalMs, action) {
    const timer = setInterval(action, intervalMs);
    timer.unref();
    return () => clearInterval(timer);
  },
};

/** Resolves after `delayMs`; `keepAlive` as for Clock.schedule. */
export function sleep(clock: Clock, delayMs: number, keepAlive = false): Promise<void> {
  return new Promise((resolve) => clock.schedule(delayMs, resolve, keepAlive));
}

/** `promise`, or `onTimeout` when it has not settled after `ms`; a rejection passes through. */
export function within<T>(clock: Clock, promise: Promise<T>, ms: number, onTimeout: T): Promise<T> {
  let cancel: Cancel = () => {};
  const timeout = new Promise<T>((resolve) => (cancel = clock.schedule(ms, () => resolve(onTimeout))));
  return Promise.race([promise, timeout]).finally(cancel);
}

import { performance } from 'node:perf_hooks';
import type { Timers } from './sequence.js';

/** Monotonic time and Node timers. */
export const realTimers: Timers = {
  now: () => performance.now(),
  schedule(delayMs, action) {
    const timer = setTimeout(action, delayMs);
    return () => clearTimeout(timer);
  },
};

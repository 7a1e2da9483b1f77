import { describe, expect, it } from 'vitest';
import type { ChildExit } from '../../src/process/exit-status.js';
import { decideRestart, type RestartPolicy } from '../../src/restart/policy.js';

const failed: ChildExit = { kind: 'exited', code: 1 };
const clean: ChildExit = { kind: 'exited', code: 0 };
const killed: ChildExit = { kind: 'signaled', signal: 'SIGKILL' };

function decide(policy: RestartPolicy, exit: ChildExit, restartsInRow = 0, ranMs = 100, stopRequested = false) {
  return decideRestart(
    { policy, firstDelayMs: 1_000, maxDelayMs: 60_000 },
    { exit, stopRequested, ranMs, restartsInRow },
  );
}

describe('decideRestart', () => {
  it('never restarts by default', () => {
    for (const exit of [failed, clean, killed]) expect(decide('never', exit)).toEqual({ restart: false });
  });

  it('on-failure restarts after a non-zero exit or a signal, not after exit 0', () => {
    expect(decide('on-failure', failed).restart).toBe(true);
    expect(decide('on-failure', killed).restart).toBe(true);
    expect(decide('on-failure', clean)).toEqual({ restart: false });
  });

  it('always restarts, even after exit 0', () => {
    expect(decide('always', clean)).toEqual({ restart: true, delayMs: 1_000, restartsInRow: 1 });
  });

  it('never restarts once drain-init was asked to stop, or when the command cannot start', () => {
    expect(decide('always', killed, 0, 100, true)).toEqual({ restart: false });
    expect(decide('always', { kind: 'spawn-failed', errno: 'ENOENT', message: 'x' })).toEqual({ restart: false });
  });

  it('doubles the delay for each restart in a row, up to the cap', () => {
    const delays = [0, 1, 2, 3, 4, 5, 6, 7, 20].map((inRow) => {
      const decision = decide('on-failure', failed, inRow);
      return decision.restart ? decision.delayMs : undefined;
    });
    expect(delays).toEqual([1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000, 60_000]);
    expect(decide('on-failure', failed, 3)).toMatchObject({ restartsInRow: 4 });
  });

  it('starts a new row after a run longer than the cap', () => {
    expect(decide('on-failure', failed, 6, 60_001)).toEqual({ restart: true, delayMs: 1_000, restartsInRow: 1 });
    expect(decide('on-failure', failed, 6, 60_000)).toMatchObject({ delayMs: 60_000 });
  });
});

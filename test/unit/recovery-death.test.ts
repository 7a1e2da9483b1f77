import { describe, expect, it } from 'vitest';
import { workerDeath } from '../../src/recovery/death.js';

const quiet = { oomKillsBefore: 0, oomKillsAfter: 0, killedAtDeadline: false };

describe('workerDeath', () => {
  it('takes a clean exit as Sidekiq having requeued its own jobs', () => {
    expect(workerDeath({ kind: 'exited', code: 0 }, quiet)).toEqual({
      cause: 'clean',
      description: 'worker exited cleanly',
      recoverJobs: false,
    });
  });

  it('recovers after a non-zero exit', () => {
    expect(workerDeath({ kind: 'exited', code: 1 }, quiet)).toEqual({
      cause: 'exit-code',
      description: 'worker exited with code 1',
      recoverJobs: true,
    });
  });

  it('names an OOM kill when the cgroup counter rose across a SIGKILL', () => {
    expect(workerDeath({ kind: 'signaled', signal: 'SIGKILL' }, { ...quiet, oomKillsAfter: 1 })).toEqual({
      cause: 'oom-killed',
      description: 'worker OOM-killed',
      recoverJobs: true,
    });
    expect(
      workerDeath({ kind: 'signaled', signal: 'SIGKILL' }, { ...quiet, oomKillsAfter: 1, killedAtDeadline: true })
        .cause,
    ).toBe('oom-killed');
  });

  it('does not claim an OOM kill without both readings, or for another signal', () => {
    expect(
      workerDeath({ kind: 'signaled', signal: 'SIGKILL' }, { ...quiet, oomKillsBefore: undefined, oomKillsAfter: 3 })
        .cause,
    ).toBe('signal');
    expect(workerDeath({ kind: 'signaled', signal: 'SIGKILL' }, { ...quiet, oomKillsAfter: undefined }).cause).toBe(
      'signal',
    );
    expect(workerDeath({ kind: 'signaled', signal: 'SIGSEGV' }, { ...quiet, oomKillsAfter: 1 })).toEqual({
      cause: 'signal',
      description: 'worker killed by signal SIGSEGV',
      recoverJobs: true,
    });
  });

  it("names drain-init's own kill at the deadline", () => {
    expect(workerDeath({ kind: 'signaled', signal: 'SIGKILL' }, { ...quiet, killedAtDeadline: true })).toEqual({
      cause: 'killed-at-deadline',
      description: "worker killed by drain-init's SIGKILL at the deadline",
      recoverJobs: true,
    });
  });

  it('recovers nothing for a worker that never started', () => {
    expect(workerDeath({ kind: 'spawn-failed', errno: 'ENOENT', message: 'x' }, quiet).recoverJobs).toBe(false);
  });
});

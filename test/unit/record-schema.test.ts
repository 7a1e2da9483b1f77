import { describe, expect, it } from 'vitest';
import { RedisClock, timeReplyMs } from '../../src/record/redis-clock.js';
import { applyUpdate, initialRecord, recordFields, recordKeys } from '../../src/record/schema.js';

const identity = { program: 'bundle', version: '0.1.0' };
const OWNER = { token: 'f00d', beatEveryMs: 10_000 };

describe('recordKeys', () => {
  it('puts every key under the prefix', () => {
    expect(recordKeys('drain-init', 'worker-1')).toEqual({
      instance: 'drain-init:instance:worker-1',
      registry: 'drain-init:instances',
    });
  });
});

describe('recordFields', () => {
  it('writes the whole record, times moved onto the Redis clock', () => {
    const record = initialRecord(identity, OWNER, 1, 'host-a', 100);
    expect(recordFields(record, 1_700_000_000_000, 1_700_000_000_500)).toEqual({
      state: 'starting',
      pid: '1',
      program: 'bundle',
      version: '0.1.0',
      hostname: 'host-a',
      owner: 'f00d',
      beatEveryMs: '10000',
      startedAt: '1700000000100',
      lastBeat: '1700000000500',
      restarts: '0',
    });
  });

  it('adds the child, exit, stop plan, absolute deadline and jobs once known', () => {
    let record = initialRecord(identity, OWNER, 1, 'host-a', 0);
    record = applyUpdate(record, { state: 'running', childPid: 42, jobsInFlight: 3 }, 10);
    record = applyUpdate(
      record,
      { state: 'stopping', stopPlan: 'TSTP now, TERM at 5s, KILL at 28s', deadlineInMs: 28_000 },
      1_000.4,
    );
    record = applyUpdate(record, { state: 'exited', lastExit: 'signal SIGKILL', restarts: 1 }, 30_000);
    expect(recordFields(record, 1_000, 31_000)).toMatchObject({
      state: 'exited',
      childPid: '42',
      jobsInFlight: '3',
      stopPlan: 'TSTP now, TERM at 5s, KILL at 28s',
      deadline: '30000',
      lastExit: 'signal SIGKILL',
      restarts: '1',
    });
  });

  it('never holds the arguments of the program', () => {
    const fields = recordFields(initialRecord({ program: 'sidekiq', version: '1' }, OWNER, 1, 'h', 0), 0, 0);
    expect(Object.values(fields).join(' ')).not.toMatch(/--|password/);
  });
});

describe('RedisClock', () => {
  it('reads TIME replies as milliseconds', () => {
    expect(timeReplyMs(['1700000000', '250000'])).toBe(1_700_000_000_250);
    expect(() => timeReplyMs(['x', '1'])).toThrow(/unexpected TIME reply/);
    expect(() => timeReplyMs('OK')).toThrow(/unexpected TIME reply/);
  });

  it('places the reading halfway through the round trip', () => {
    const clock = new RedisClock();
    expect(clock.synced).toBe(false);
    expect(() => clock.offset()).toThrow(/not read yet/);
    clock.observe(['1000', '0'], 100, 300);
    expect(clock.synced).toBe(true);
    expect(clock.offset()).toBe(1_000_000 - 200);
  });
});

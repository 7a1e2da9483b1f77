import { beforeEach, describe, expect, it } from 'vitest';
import { endLeftovers, selectLeftovers, type LeftoverTimes } from '../../src/process/leftovers.js';
import type { ProcessInfo } from '../../src/process/proc.js';
import { captureLogger, FakeClock } from '../helpers/fake.js';

const TERM = 15;
const CONT = 18;
const KILL = 9;

const info = (pid: number, ppid: number, pgrp: number, state = 'S', command = `p${pid}`): ProcessInfo => ({
  pid,
  ppid,
  pgrp,
  state,
  command,
});

describe('selectLeftovers', () => {
  // drain-init is 1; the child (group 10) exited; 11 and 12 are in its group, 13 left it with setsid, 12's child 14 too;
  // 20 is a process drain-init does not know (docker exec); 15 is a zombie.
  const table = [
    info(1, 0, 1),
    info(11, 1, 10),
    info(12, 1, 10),
    info(13, 1, 13),
    info(14, 12, 14),
    info(15, 1, 10, 'Z'),
    info(20, 0, 20),
  ];

  it('takes every running process but drain-init as PID 1', () => {
    const pids = selectLeftovers(table, { self: 1, childGroup: 10, wholeNamespace: true }).map(
      (leftover) => leftover.pid,
    );
    expect(pids).toEqual([11, 12, 13, 14, 20]);
  });

  it("otherwise takes drain-init's descendants and the child's process group", () => {
    const descendantsAndGroup = [
      info(500, 400, 500),
      info(11, 500, 10),
      info(13, 500, 13),
      info(14, 13, 14),
      info(30, 2, 10),
      info(31, 2, 31),
      info(32, 31, 32),
    ];
    const pids = selectLeftovers(descendantsAndGroup, { self: 500, childGroup: 10, wholeNamespace: false }).map(
      (leftover) => leftover.pid,
    );
    expect(pids).toEqual([11, 13, 14, 30]);
  });

  it('finds nothing when only drain-init is left', () => {
    expect(selectLeftovers([info(1, 0, 1)], { self: 1, childGroup: undefined, wholeNamespace: true })).toEqual([]);
  });
});

describe('endLeftovers', () => {
  let timers: FakeClock;
  let table: ProcessInfo[];
  let sent: string[];
  /** Pids that exit when they get TERM. */
  let exitOnTerm: Set<number>;

  beforeEach(() => {
    timers = new FakeClock();
    table = [];
    sent = [];
    exitOnTerm = new Set();
  });

  function run(times: LeftoverTimes = { graceMs: 2_000, killAt: undefined }) {
    const { log, records } = captureLogger();
    let done = false;
    const actions = {
      list: () => table,
      signal: (pid: number, signal: number) => {
        sent.push(`${signal} ${pid} @${timers.now() - 1_000}`);
        if (signal === TERM && exitOnTerm.has(pid)) table = table.filter((leftover) => leftover.pid !== pid);
      },
    };
    void endLeftovers(actions, timers, log, times).then(() => (done = true));
    return { done: () => done, records };
  }

  const settle = () => new Promise((resolve) => setImmediate(resolve));

  it('does nothing when nothing is left', async () => {
    const { done, records } = run();
    await settle();
    expect(done()).toBe(true);
    expect(sent).toEqual([]);
    expect(records).toEqual([]);
  });

  it('sends CONT after TERM only to a suspended leftover', () => {
    table = [info(11, 1, 10, 'T'), info(12, 1, 10)];
    run();
    expect(sent).toEqual([`${TERM} 11 @0`, `${CONT} 11 @0`, `${TERM} 12 @0`]);
  });

  it('sends TERM, and ends as soon as the leftovers exit', async () => {
    table = [info(11, 1, 10), info(12, 1, 10)];
    exitOnTerm = new Set([11, 12]);
    const { done, records } = run();
    expect(sent).toEqual([`${TERM} 11 @0`, `${TERM} 12 @0`]);
    timers.advance(50);
    await settle();
    expect(done()).toBe(true);
    const ended = records.find((record) => record.msg === 'the leftover processes exited after SIGTERM');
    expect(ended?.ended).toEqual([
      { pid: 11, command: 'p11', afterMs: 50 },
      { pid: 12, command: 'p12', afterMs: 50 },
    ]);
    expect(records[0]?.leftovers).toEqual([
      { pid: 11, command: 'p11' },
      { pid: 12, command: 'p12' },
    ]);
  });

  it('KILLs what still runs when the grace period is over, not before', async () => {
    table = [info(11, 1, 10), info(12, 1, 10)];
    exitOnTerm = new Set([11]);
    const { done, records } = run();
    timers.advance(1_999);
    await settle();
    expect(done()).toBe(false);
    expect(sent.some((line) => line.startsWith(`${KILL} `))).toBe(false);
    timers.advance(1);
    await settle();
    expect(done()).toBe(true);
    expect(sent.filter((line) => line.startsWith(`${KILL} `))).toEqual([`${KILL} 12 @2000`]);
    const killed = records.find((record) => String(record.msg).includes('sent them SIGKILL'));
    expect(killed).toMatchObject({
      ended: [{ pid: 11, command: 'p11', afterMs: 50 }],
      killed: [{ pid: 12, command: 'p12' }],
    });
  });

  it('ends the grace period by the kill step of a stop under way', async () => {
    table = [info(11, 1, 10)];
    const { done } = run({ graceMs: 2_000, killAt: timers.now() + 300 });
    timers.advance(300);
    await settle();
    expect(done()).toBe(true);
    expect(sent).toEqual([`${TERM} 11 @0`, `${KILL} 11 @300`]);
  });

  it('KILLs at once when the kill step has passed', async () => {
    table = [info(11, 1, 10)];
    const { done } = run({ graceMs: 2_000, killAt: timers.now() - 5 });
    timers.advance(0);
    await settle();
    expect(done()).toBe(true);
    expect(sent).toEqual([`${TERM} 11 @0`, `${KILL} 11 @0`]);
  });

  it('sends TERM to a process that appears during the grace period', () => {
    table = [info(11, 1, 10)];
    run();
    table = [...table, info(12, 11, 10)];
    timers.advance(50);
    expect(sent).toEqual([`${TERM} 11 @0`, `${TERM} 12 @50`]);
  });
});

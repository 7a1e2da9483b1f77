import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { processState } from '../../src/process/proc.js';
import {
  BIN,
  CLI,
  childOf,
  compiledFixture,
  killedAfterEach,
  logLines,
  recorded,
  startInit,
  tempPath,
  waitFor,
  type Run,
} from '../helpers/pid1.js';

// tini gives its child the signal mask and the ignored signals it was started with (Node resets both,
// and libuv again in every child): drain-init hands them over from bin/drain-init to its exec helper.
const STATE = compiledFixture('signal-state');
const track = killedAfterEach();

/** The worker's signal state as it found it at start: SigBlk, SigIgn, and the handover variable if it saw it. */
interface WorkerState {
  readonly blocked: string;
  readonly ignored: string;
  readonly variable: string;
  readonly pid: number;
}

/** Runs `init` (argv before the worker) started by a parent that blocked and ignored the given signals. */
function underParent(
  blocked: string,
  ignored: string,
  init: readonly string[],
  file: string,
  asPid1: boolean,
  extra: readonly string[] = [],
): Run {
  return track(
    startInit([STATE, 'with', blocked, ignored, '--', ...init, STATE, 'record', file, ...extra], { asPid1 }),
  );
}

async function workerState(file: string): Promise<WorkerState> {
  await waitFor(() => existsSync(file) && readFileSync(file, 'utf8').includes('READY'), 'the worker to start');
  const lines = readFileSync(file, 'utf8').split('\n');
  const [, blocked = '', ignored = '', variable = ''] =
    lines.find((line) => line.startsWith('STATE'))?.split(' ') ?? [];
  const pid = Number(lines.find((line) => line.startsWith('READY'))?.split(' ')[1]);
  return { blocked, ignored, variable, pid };
}

/** Ends a worker that is not PID 1's and so outlives an init killed at the end of the test. */
function endWorker(pid: number): void {
  if (processState(pid) !== undefined) process.kill(pid, 'SIGKILL');
}

const BLOCKED_USR1 = (1 << 9).toString(16).padStart(16, '0');
const IGNORED_HUP = '0000000000000001';

describe.each([true, false])('the inherited signal mask and ignored signals (PID 1: %s)', (asPid1) => {
  it('reach the worker as they reach tini’s child, and the handover variable does not', async () => {
    const states: WorkerState[] = [];
    for (const init of [
      [BIN, '-s', '--'],
      ['tini', '-s', '--'],
    ]) {
      const file = tempPath('state');
      const run = underParent(BLOCKED_USR1, IGNORED_HUP, init, file, asPid1, ['--exit-on', 'SIGUSR2']);
      const state = await workerState(file);
      states.push(state);
      try {
        // Signals still reach it: the blocked one waits for the worker's sigwaitinfo like any other.
        const initPid = await run.pid();
        process.kill(initPid, 'SIGUSR1');
        await waitFor(() => recorded(file).length > 0, 'SIGUSR1 to reach the worker');
        process.kill(initPid, 'SIGUSR2');
        expect((await run.done).code).toBe(0);
        expect(recorded(file).map((entry) => entry.name)).toEqual(['SIGUSR1', 'SIGUSR2']);
      } finally {
        endWorker(state.pid);
      }
    }
    expect(states.map(({ blocked, ignored, variable }) => ({ blocked, ignored, variable }))).toEqual([
      { blocked: BLOCKED_USR1, ignored: IGNORED_HUP, variable: '-' },
      { blocked: BLOCKED_USR1, ignored: IGNORED_HUP, variable: '-' },
    ]);
  });

  it('under nohup, a forwarded SIGHUP leaves the worker running, as under tini; without nohup it ends it', async () => {
    for (const init of [
      [BIN, '-s', '--'],
      ['tini', '-s', '--'],
    ]) {
      for (const nohup of [true, false]) {
        const run = track(startInit([...(nohup ? ['nohup'] : []), ...init, 'sleep', '60'], { asPid1 }));
        const initPid = await run.pid();
        const worker = await waitFor(() => {
          const pid = childOf(initPid);
          return pid !== undefined && readFileSync(`/proc/${pid}/comm`, 'utf8') === 'sleep\n' ? pid : undefined;
        }, 'the worker');
        try {
          process.kill(initPid, 'SIGHUP');
          if (nohup) {
            await new Promise((resolve) => setTimeout(resolve, 300));
            expect(processState(worker)).toMatch(/^[SR]$/);
          } else {
            expect((await run.done).code).toBe(129);
          }
        } finally {
          endWorker(worker);
        }
      }
    }
  });

  it('a command that cannot be run, started through the exec helper, still exits 127 or 126', async () => {
    const start = (command: string) =>
      track(startInit([STATE, 'with', BLOCKED_USR1, IGNORED_HUP, '--', BIN, '--', command], { asPid1 })).done;
    const notFound = await start('no-such-command-here');
    expect(notFound.code).toBe(127);
    expect(notFound.stderr).toContain('command not found: no-such-command-here');
    const file = tempPath('not-executable');
    writeFileSync(file, '#!/bin/sh\n', { mode: 0o644 });
    const notExecutable = await start(file);
    expect(notExecutable.code).toBe(126);
    expect(notExecutable.stderr).toContain('command cannot be executed');
  });
});

describe('without the handover', () => {
  it('node dist/main.mjs started directly gives the worker the default state, as before', async () => {
    const file = tempPath('direct');
    const run = underParent(BLOCKED_USR1, IGNORED_HUP, [process.execPath, CLI, '--'], file, true);
    expect(await workerState(file)).toMatchObject({ blocked: '0'.repeat(16), ignored: '0'.repeat(16) });
    await run.pid();
  });

  it('a value it does not understand: one warning, and the default state', async () => {
    const file = tempPath('malformed');
    const run = track(
      startInit([process.execPath, CLI, '--', STATE, 'record', file], {
        env: { _DRAIN_INIT_INHERITED_SIGNALS: 'nohup' },
      }),
    );
    expect(await workerState(file)).toMatchObject({ blocked: '0'.repeat(16), ignored: '0'.repeat(16), variable: '-' });
    // Logged before the worker's spawn, written once the logger is loaded, just after it.
    const warnings = await waitFor(() => {
      const lines = logLines(run.stderr());
      return lines.some((line) => line.msg === 'started child') ? lines.filter((line) => line.level === 40) : undefined;
    }, 'the start logged');
    expect(warnings.map((line) => line.msg)).toEqual([
      'ignoring the inherited signal state handed over: the worker starts with the default one',
    ]);
  });
});

describe('bin/drain-init run by bash (/bin/sh on some systems)', () => {
  it('does not pass on the SIGQUIT bash ignores for itself, but one that came ignored', async () => {
    for (const [ignored, expected] of [
      [IGNORED_HUP, IGNORED_HUP],
      ['0000000000000005', '0000000000000005'],
    ] as const) {
      const file = tempPath('bash');
      const run = underParent(BLOCKED_USR1, ignored, ['bash', BIN, '--'], file, true);
      expect(await workerState(file)).toMatchObject({ blocked: BLOCKED_USR1, ignored: expected });
      await run.pid();
    }
  });
});

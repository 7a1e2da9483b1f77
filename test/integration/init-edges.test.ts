import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { processState } from '../../src/process/proc.js';
import {
  FIXTURES,
  ROOT,
  killedAfterEach,
  logLines,
  recorded,
  startDrainInit,
  tempPath,
  waitFor,
  type Run,
} from '../helpers/pid1.js';

const RECORDER = `${FIXTURES}recorder.py`;
const track = killedAfterEach();

function start(...args: Parameters<typeof startDrainInit>): Run {
  return track(startDrainInit(...args));
}

/** The host pid of a process's only child. */
function childOf(pid: number): Promise<number> {
  return waitFor(
    () => Number(readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(' ')[0]) || undefined,
    `a child of ${pid}`,
  );
}

const monotonicMs = () => Number(process.hrtime.bigint()) / 1e6;
const messages = (run: Run) => logLines(run.stderr()).map((line) => String(line.msg));
const RESUMED = 'resumed it with SIGCONT';

describe('a suspended worker', () => {
  it('is resumed within 1 s when a STOP suspends it, and drain-init says so', async () => {
    const run = start(['--', 'sleep', '60']);
    const worker = await childOf(await run.pid());
    await waitFor(() => messages(run).includes('started child'), 'the start');
    process.kill(worker, 'SIGSTOP');
    await waitFor(() => messages(run).some((message) => message.includes(RESUMED)), 'the resume', 1_000);
    expect(['S', 'R']).toContain(processState(worker));
    process.kill(worker, 'SIGSTOP');
    await waitFor(
      () => messages(run).filter((message) => message.includes(RESUMED)).length === 2,
      'the second resume',
      1_000,
    );
  });

  it('stays suspended with --job-control until a stop begins, and is resumed before the quiet signal', async () => {
    const run = start([
      '--job-control',
      '--preset',
      'sidekiq',
      '--grace-period',
      '20s',
      '--shutdown-timeout',
      '5s',
      '--',
      'sleep',
      '60',
    ]);
    const pid = await run.pid();
    const worker = await childOf(pid);
    await waitFor(() => messages(run).includes('started child'), 'the start');
    process.kill(worker, 'SIGSTOP');
    await waitFor(
      () => messages(run).some((message) => message.includes('left suspended (--job-control)')),
      'the notice',
    );
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(processState(worker)).toBe('T');
    process.kill(pid, 'SIGTERM');
    await waitFor(() => messages(run).some((message) => message.includes(RESUMED)), 'the resume', 1_000);
    expect(['S', 'R']).toContain(processState(worker));
    const order = messages(run).filter((message) => message.includes(RESUMED) || message === 'sent quiet signal');
    expect(order).toEqual([expect.stringContaining(RESUMED), 'sent quiet signal']);
  });
});

describe('processes left when the worker exits', () => {
  /** A worker that starts the recorder in the background, waits until it runs, and exits 3. */
  function leaving(file: string, recorderFlags = '', setsid = false): string[] {
    const background = `${setsid ? 'setsid ' : ''}${RECORDER} ${file} ${recorderFlags}`;
    return ['sh', '-c', `${background} & while ! grep -q READY ${file} 2>/dev/null; do sleep 0.02; done; exit 3`];
  }

  it('get TERM, and drain-init exits with the worker status as soon as they are gone', async () => {
    const file = tempPath('leftover');
    const result = await start(['--', ...leaving(file, '--exit-on SIGTERM')]).done;
    expect(result.code).toBe(3);
    expect(recorded(file).map((entry) => entry.name)[0]).toBe('SIGTERM');
    const logs = logLines(result.stderr);
    expect(
      logs.find((line) => String(line.msg).startsWith('processes left after the child exited'))?.leftovers,
    ).toEqual([{ pid: expect.any(Number), command: 'python3' }]);
    expect(logs.find((line) => line.msg === 'the leftover processes exited after SIGTERM')?.ended).toEqual([
      { pid: expect.any(Number), command: 'python3', afterMs: expect.any(Number) },
    ]);
  });

  it('get KILL after --leftover-grace when they ignore TERM', async () => {
    const file = tempPath('stubborn');
    const result = await start(['--leftover-grace', '1s', '--', ...leaving(file)]).done;
    const ended = monotonicMs();
    expect(result.code).toBe(3);
    const signals = recorded(file);
    // No CONT: the leftover was not suspended (only a suspended one gets CONT, as for the worker).
    expect(signals.map((entry) => entry.name)).toEqual(['SIGTERM']);
    // KILL at the end of the 1 s grace: not at once, and not after the default 2 s.
    const sinceTerm = ended - (signals[0]?.at ?? 0);
    expect(sinceTerm).toBeGreaterThan(900);
    expect(sinceTerm).toBeLessThan(1_900);
    const killed = logLines(result.stderr).find((line) => String(line.msg).includes('sent them SIGKILL'));
    expect(killed?.killed).toEqual([{ pid: expect.any(Number), command: 'python3' }]);
  });

  it('are left to the kernel with --leftover-grace 0, as other inits do', async () => {
    const file = tempPath('untouched');
    const result = await start(['--leftover-grace', '0', '--', ...leaving(file)]).done;
    expect(result.code).toBe(3);
    expect(recorded(file)).toEqual([]);
    expect(result.stderr).not.toContain('left after the child exited');
  });

  it('are found as descendants (-s) or in the process group when drain-init is not PID 1', async () => {
    for (const [flags, setsid] of [
      [['-s'], true],
      [[], false],
    ] as const) {
      const file = tempPath('not-pid1');
      const run = start([...flags, '--', ...leaving(file, '--exit-on SIGTERM', setsid)], { asPid1: false });
      // Not PID 1: a leftover drain-init missed outlives it, holding its output open.
      const code = await new Promise((resolve) => run.process.on('exit', resolve));
      const leftover = Number(readFileSync(file, 'utf8').split(' ')[1]);
      try {
        expect(code).toBe(3);
        await waitFor(() => recorded(file).length > 0, 'TERM to reach the leftover', 1_000);
        expect(recorded(file).map((entry) => entry.name)[0]).toBe('SIGTERM');
      } finally {
        if (processState(leftover) !== undefined) process.kill(leftover, 'SIGKILL');
      }
    }
  });
});

describe('-e / --remap-exit', () => {
  it.each([
    [['-e', '143', '--', 'sh', '-c', 'exit 143'], 0],
    [['-e', '143', '--', 'sh', '-c', 'kill -TERM $$'], 0],
    [['-e', '143', '-e', '1', '--', 'sh', '-c', 'exit 7'], 7],
    [['--', 'sh', '-c', 'exit 143'], 143],
  ])('%j exits %d', async (args, code) => {
    const result = await start(args).done;
    expect(result.code).toBe(code);
    expect(result.stderr.includes('counts as success')).toBe(code === 0);
  });
});

describe('real-time signals', () => {
  // Node cannot listen for them: the native addon forwards them from its own handler.
  const REALTIME = [34, 40, 64];

  it.each([true, false])('are forwarded, and never kill drain-init (PID 1: %s)', async (asPid1) => {
    const file = tempPath('realtime');
    const run = start(['--', RECORDER, file, '--exit-on', 'SIGHUP'], { asPid1 });
    await waitFor(() => existsSync(file) && readFileSync(file, 'utf8').includes('READY'), 'the recorder');
    const pid = await run.pid();
    const worker = Number(readFileSync(file, 'utf8').split(' ')[1]);
    try {
      for (const [index, signal] of REALTIME.entries()) {
        spawnSync('kill', [`-${signal}`, String(pid)]);
        await waitFor(() => recorded(file).length > index, `signal ${signal} to reach the child`);
      }
      expect(recorded(file).map((entry) => entry.name)).toEqual(['SIGRTMIN', 'SIG40', 'SIGRTMAX']);
      process.kill(pid, 'SIGHUP');
      expect((await run.done).code).toBe(0);
    } finally {
      if (!asPid1 && processState(worker) !== undefined) process.kill(worker, 'SIGKILL');
    }
  });
});

describe('synchronous signals sent with kill', () => {
  const SYNCHRONOUS: NodeJS.Signals[] = ['SIGSEGV', 'SIGBUS', 'SIGFPE', 'SIGILL', 'SIGTRAP', 'SIGABRT', 'SIGSYS'];

  it('are forwarded and never kill drain-init, when not PID 1 either', async () => {
    const file = tempPath('synchronous');
    const run = start(['--', RECORDER, file, '--exit-on', 'SIGHUP'], { asPid1: false });
    await waitFor(() => existsSync(file) && readFileSync(file, 'utf8').includes('READY'), 'the recorder');
    const pid = await run.pid();
    const worker = Number(readFileSync(file, 'utf8').split(' ')[1]);
    try {
      for (const [index, signal] of SYNCHRONOUS.entries()) {
        process.kill(pid, signal);
        await waitFor(() => recorded(file).length > index, `${signal} to reach the child`);
      }
      expect(recorded(file).map((entry) => entry.name)).toEqual(SYNCHRONOUS);
      expect(run.process.exitCode).toBeNull();
      expect(run.process.signalCode).toBeNull();
      process.kill(pid, 'SIGHUP');
      expect((await run.done).code).toBe(0);
    } finally {
      // Not PID 1: a worker that outlived drain-init would hold its output open.
      if (processState(worker) !== undefined) process.kill(worker, 'SIGKILL');
    }
  });

  it('a real fault still kills the process that handles SIGSEGV (the native guard)', () => {
    const result = spawnSync(process.execPath, [`${FIXTURES}fault.mjs`, `${ROOT}dist/drain_init.node`], {
      encoding: 'utf8',
      timeout: 10_000,
    });
    expect(result.stdout).toBe('handled SIGSEGV\n');
    expect(result.signal).toBe('SIGSEGV');
  });
});

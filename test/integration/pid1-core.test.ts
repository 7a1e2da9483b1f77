import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { processState } from '../../src/process/proc.js';
import {
  CLI,
  FIXTURES,
  ROOT,
  killedAfterEach,
  logLines,
  recorded,
  startDrainInit,
  startInit,
  tempPath,
  waitFor,
  type Run,
} from '../helpers/pid1.js';

const RECORDER = `${FIXTURES}recorder.py`;
const track = killedAfterEach();

function start(...args: Parameters<typeof startDrainInit>): Run {
  return track(startDrainInit(...args));
}

async function startRecorder(args: string[], file: string, asPid1 = true): Promise<{ run: Run; pid: number }> {
  const run = start([...(asPid1 ? [] : ['-s']), ...args, '--', RECORDER, file], { asPid1 });
  await waitFor(() => existsSync(file) && readFileSync(file, 'utf8').includes('READY'), 'the recorder to start');
  return { run, pid: await run.pid() };
}

/** Kills a recorder that is not PID 1's worker: it would outlive drain-init, killed after the test. */
async function endRecorder(file: string, asPid1: boolean): Promise<void> {
  const worker = Number(readFileSync(file, 'utf8').split(' ')[1]);
  if (!asPid1 && processState(worker) !== undefined) process.kill(worker, 'SIGKILL');
}

/** Children of a host pid and their process states, from /proc. */
function childStates(pid: number): string[] {
  const tasks = readdirSync(`/proc/${pid}/task`);
  const children = tasks.flatMap((task) =>
    readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim().split(' ').filter(Boolean),
  );
  return children.flatMap((child) => {
    try {
      const stat = readFileSync(`/proc/${child}/stat`, 'utf8');
      return [stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0] ?? '?'];
    } catch {
      return [];
    }
  });
}

function statusKb(pid: number, field: string): number {
  const match = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(match?.[1]);
}

/**
 * Anonymous resident memory: what would grow with the orphans if reaping leaked. The file-backed part (the
 * node executable's code) drops when drain-init trims it 2 s after start and comes back as code runs, so it
 * moves with timing, not with the orphans.
 */
const anonRssKb = (pid: number) => statusKb(pid, 'RssAnon');
const rssFileKb = (pid: number) => statusKb(pid, 'RssFile');

describe('signal forwarding as PID 1', () => {
  const SIGNALS: NodeJS.Signals[] = [
    'SIGHUP',
    'SIGQUIT',
    'SIGUSR1',
    'SIGUSR2',
    'SIGALRM',
    'SIGWINCH',
    'SIGTTIN',
    'SIGTTOU',
    'SIGCONT',
    'SIGPIPE',
    'SIGTSTP',
    'SIGURG',
    'SIGXCPU',
    'SIGVTALRM',
    'SIGPROF',
    'SIGIO',
    'SIGPWR',
    'SIGSYS',
    'SIGTRAP',
    'SIGABRT',
    'SIGSEGV',
    'SIGBUS',
    'SIGFPE',
    'SIGILL',
    'SIGSTKFLT',
    'SIGXFSZ',
  ];

  it('passes every catchable signal on to the child, in order', async () => {
    const file = tempPath('signals');
    const { run, pid } = await startRecorder([], file);
    for (const [index, signal] of SIGNALS.entries()) {
      process.kill(pid, signal);
      await waitFor(() => recorded(file).length > index, `${signal} to reach the child`);
    }
    expect(recorded(file).map((entry) => entry.name)).toEqual(SIGNALS);
    // drain-init logs after it forwards: its last line may reach us after the child recorded the signal.
    const forwarded = () =>
      logLines(run.stderr())
        .filter((line) => line.msg === 'forwarded signal')
        .map((line) => line.signal);
    await waitFor(() => forwarded().length === SIGNALS.length, 'the last log line');
    expect(forwarded()).toEqual(SIGNALS);
  });

  it('rewrites a signal with --rewrite, and drops one rewritten to 0', async () => {
    const file = tempPath('rewrite');
    const { pid } = await startRecorder(['--rewrite', 'USR1:USR2', '--rewrite', 'HUP:0'], file);
    process.kill(pid, 'SIGHUP');
    process.kill(pid, 'SIGUSR1');
    await waitFor(() => recorded(file).length > 0, 'the rewritten signal');
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(recorded(file).map((entry) => entry.name)).toEqual(['SIGUSR2']);
  });

  it('reaches a grandchild in the process group with -g, and only the child without it', async () => {
    for (const group of [true, false]) {
      const file = tempPath('group');
      const script = `trap ':' USR1; ${RECORDER} ${file} & while kill -0 $! 2>/dev/null; do sleep 0.05; done`;
      const run = start([...(group ? ['-g'] : []), '--', 'sh', '-c', script]);
      await waitFor(() => existsSync(file), 'the grandchild to start');
      process.kill(await run.pid(), 'SIGUSR1');
      if (group) {
        await waitFor(() => recorded(file).length > 0, 'USR1 to reach the grandchild');
        expect(recorded(file).map((entry) => entry.name)).toEqual(['SIGUSR1']);
      } else {
        await waitFor(() => logLines(run.stderr()).some((line) => line.msg === 'forwarded signal'), 'the forward');
        await new Promise((resolve) => setTimeout(resolve, 300));
        expect(recorded(file)).toEqual([]);
      }
    }
  });
});

describe.each([true, false])('signal forwarding from the signal handler (PID 1: %s)', (asPid1) => {
  // Every signal but the stop signals is forwarded by the native signal handler, before JavaScript runs.
  it('leaves a signal --rewrite turns into TERM to the stop sequence: the worker never gets it directly', async () => {
    const file = tempPath('rewritten-stop');
    const { run, pid } = await startRecorder(
      ['--preset', 'sidekiq', '--grace-period', '20s', '--shutdown-timeout', '5s', '--rewrite', 'USR1:TERM'],
      file,
      asPid1,
    );
    try {
      process.kill(pid, 'SIGUSR1');
      await waitFor(() => recorded(file).length > 0, 'the quiet signal');
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(recorded(file).map((entry) => entry.name)).toEqual(['SIGTSTP']);
      expect(logLines(run.stderr()).some((line) => line.msg === 'forwarded signal')).toBe(false);
    } finally {
      await endRecorder(file, asPid1);
    }
  });

  it('logs a signal that comes with no worker to forward it to (a restart pending), and forwards none', async () => {
    const run = start(['-s', '--restart', 'always', '--restart-delay', '1m', '--', 'true'], { asPid1 });
    const pid = await run.pid();
    await waitFor(() => logLines(run.stderr()).some((line) => String(line.msg).startsWith('restarting')), 'the exit');
    process.kill(pid, 'SIGUSR1');
    await waitFor(
      () => logLines(run.stderr()).some((line) => line.msg === 'received signal, no child to forward it to'),
      'the log line',
    );
    expect(logLines(run.stderr()).some((line) => line.msg === 'forwarded signal')).toBe(false);
    process.kill(pid, 'SIGTERM');
    expect((await run.done).code).toBe(0);
  });
});

describe('exit codes', () => {
  it.each([
    [['true'], 0],
    [['sh', '-c', 'exit 7'], 7],
    [['sh', '-c', 'kill -KILL $$'], 137],
    [['sh', '-c', 'kill -SEGV $$'], 139],
    [['no-such-command-here'], 127],
  ])('%j exits %d', async (command, code) => {
    const result = await start(['--', ...command]).done;
    expect(result.code).toBe(code);
  });

  it('exits 126 for a file that is not executable', async () => {
    const file = tempPath('not-executable');
    writeFileSync(file, '#!/bin/sh\necho hi\n');
    chmodSync(file, 0o644);
    const result = await start(['--', file]).done;
    expect(result.code).toBe(126);
    expect(result.stderr).toContain(`command cannot be executed (permission denied or not an executable): ${file}`);
  });

  it('exits 2 for a bad flag with one line, and never starts the worker', async () => {
    const marker = tempPath('started');
    const result = await start(['--grace-period', 'soon', '--', 'touch', marker]).done;
    expect(result.code).toBe(2);
    expect(result.stderr).toBe(
      "drain-init: invalid value 'soon' for --grace-period: expected a duration such as 500ms, 30s, 2m, 1h or bare seconds\n",
    );
    expect(existsSync(marker)).toBe(false);
  });

  it('exits 2 for a bad env var', async () => {
    const result = await start(['--', 'true'], { env: { DRAIN_INIT_LOG_LEVEL: 'chatty' } }).done;
    expect(result.code).toBe(2);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
  });
});

describe('zombies', () => {
  it('reaps 1,000 orphans as PID 1 and its RSS does not grow with them', async () => {
    const run = start(['--', `${FIXTURES}orphans.sh`, '1000']);
    const pid = await run.pid();
    await waitFor(() => run.stdout().includes('spawned'), 'the orphans to be spawned', 30_000);
    const afterSpawn = anonRssKb(pid);
    await waitFor(
      () => childStates(pid).filter((state) => state !== 'Z').length === 1 && !childStates(pid).includes('Z'),
      'every orphan to be reaped',
      20_000,
    );
    expect(childStates(pid)).toEqual(['S']);
    expect(anonRssKb(pid) - afterSpawn).toBeLessThan(4_096);
    process.kill(pid, 'SIGHUP');
    const result = await run.done;
    const exit = logLines(result.stderr).find((line) => line.msg === 'child killed by signal');
    expect(exit?.zombiesReaped).toBeGreaterThanOrEqual(1000);
  });

  it.each([true, false])(
    'sees the exit of each of 30 workers restarted at once, which the SIGCHLD handler must leave to Node (PID 1: %s)',
    async (asPid1) => {
      const args = ['-s', '--restart', 'always', '--restart-delay', '10ms', '--restart-max-delay', '10ms'];
      const run = start([...args, '--', 'sh', '-c', '(sleep 0.05 &); exit 0'], { asPid1 });
      const started = () => logLines(run.stderr()).filter((line) => line.msg === 'started child').length;
      await waitFor(() => started() >= 30 || undefined, '30 workers', 30_000);
      process.kill(await run.pid(), 'SIGTERM');
      // The TERM finds a worker waiting for its restart (0), or one running, which it ends (143).
      expect([0, 143]).toContain((await run.done).code);
    },
  );

  it('the SIGCHLD handler leaves to Node a child Node spawns while the handler reaps', () => {
    // It counts forks: without that, it would reap the new child before Node knew to protect it.
    const result = spawnSync(process.execPath, [`${FIXTURES}reap-spawn.mjs`, `${ROOT}dist/drain_init.node`], {
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(result.stdout).toBe(`${Array(20).fill(3).join(',')}\n`);
  });

  it('reaps orphans when not PID 1 with -s, and warns without it', async () => {
    const run = start(['-s', '--', `${FIXTURES}orphans.sh`, '50'], { asPid1: false });
    const pid = await run.pid();
    await waitFor(() => run.stdout().includes('spawned'), 'the orphans to be spawned');
    await waitFor(() => childStates(pid).length === 1, 'every orphan to be reaped', 20_000);
    expect(run.stderr()).not.toContain('not registered as a child subreaper');
    process.kill(pid, 'SIGHUP');
    await run.done;

    const plain = await start(['--', 'true'], { asPid1: false }).done;
    expect(plain.stderr).toContain('not running as PID 1 and not registered as a child subreaper');
  });
});

describe('stdio, arguments and environment', () => {
  it('passes stdin and stdout through', async () => {
    const result = await start(['--', 'cat'], { input: 'line one\nline two\n' }).done;
    expect(result.stdout).toBe('line one\nline two\n');
    expect(result.code).toBe(0);
  });

  it('passes arguments and environment byte for byte, with no shell', async () => {
    const args = ['a b', '"quoted"', "it's", 'ünïcødé ✓', '', '$HOME', '*', '--', '-v', 'tab\there', 'new\nline'];
    const script = 'process.stdout.write(JSON.stringify({ args: process.argv.slice(1), env: process.env.ODD_VALUE }))';
    const odd = 'spaces and "quotes" and ünïcødé\nand a newline';
    const result = await start(['--', process.execPath, '-e', script, ...args], { env: { ODD_VALUE: odd } }).done;
    expect(JSON.parse(result.stdout)).toEqual({ args, env: odd });
  });
});

describe('memory', () => {
  it('lets the kernel reclaim the pages of the node executable once started', async () => {
    // A private copy, as in a container: pages that other processes map too cannot be reclaimed.
    const node = tempPath('node');
    copyFileSync(process.execPath, node);
    chmodSync(node, 0o755);
    const run = startInit([node, CLI, '-v', '--', 'sleep', '30']);
    track(run);
    const pid = await run.pid();
    await waitFor(() => logLines(run.stderr()).some((line) => line.msg === 'started child'), 'the child');
    const before = rssFileKb(pid);
    await waitFor(
      () => logLines(run.stderr()).some((line) => line.msg === 'trimmed the resident set after start-up'),
      'the trim',
      5_000,
    );
    expect(rssFileKb(pid)).toBeLessThan(before / 2);
  });
});

// Where tini is right, drain-init does as tini does: the signal the platform sent reaches a plain worker as
// sent (SIGINT stays SIGINT), a running worker gets no CONT after its stop signal, and a plain init opens no
// port. Each run side by side with tini, as PID 1 and not.
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { processState } from '../../src/process/proc.js';
import {
  CLI,
  childOf,
  FIXTURES,
  killedAfterEach,
  logLines,
  recorded,
  startInit,
  tempPath,
  waitFor,
} from '../helpers/pid1.js';

const RECORDER = `${FIXTURES}recorder.py`;
const track = killedAfterEach();

const INITS = {
  'drain-init': (args: string[]) => [process.execPath, CLI, '-s', ...args],
  tini: (args: string[]) => ['tini', '-s', ...args.filter((arg) => !arg.startsWith('--job-control'))],
} as const;

/** Starts an init over the signal recorder; resolves once the recorder is ready. */
async function recorderUnder(
  init: keyof typeof INITS,
  asPid1: boolean,
  initArgs: string[] = [],
  exitOn = ['SIGINT', 'SIGTERM'],
) {
  const file = tempPath('signals');
  const exits = exitOn.flatMap((name) => ['--exit-on', name]);
  const run = track(startInit(INITS[init]([...initArgs, '--', RECORDER, file, ...exits]), { asPid1 }));
  await waitFor(
    () => existsSync(file) && readFileSync(file, 'utf8').includes('READY'),
    'the recorder to start',
    30_000,
  );
  const pid = await run.pid();
  return { run, file, pid, worker: await waitFor(() => childOf(pid), 'the worker') };
}

describe.each([true, false])('as tini does (PID 1: %s)', (asPid1) => {
  it('passes a SIGINT on to a plain worker as SIGINT, with no CONT', async () => {
    const names: Record<string, string[]> = {};
    for (const init of ['drain-init', 'tini'] as const) {
      const { run, file, pid } = await recorderUnder(init, asPid1);
      process.kill(pid, 'SIGINT');
      await run.done;
      names[init] = recorded(file).map((entry) => entry.name);
    }
    expect(names).toEqual({ 'drain-init': ['SIGINT'], tini: ['SIGINT'] });
  });

  it('passes a SIGTERM on with no CONT after it: the worker was running', async () => {
    const { run, file, pid } = await recorderUnder('drain-init', asPid1);
    process.kill(pid, 'SIGTERM');
    const result = await run.done;
    expect(recorded(file).map((entry) => entry.name)).toEqual(['SIGTERM']);
    expect(logLines(result.stderr).find((line) => line.msg === 'sent stop signal')?.signal).toBe('SIGTERM');
  });

  it('resumes with CONT a worker that is in fact stopped, after its stop signal (tini leaves it stopped)', async () => {
    // The recorder does not exit on TERM here: it would leave the CONT pending beside it unrecorded.
    const { run, file, pid, worker } = await recorderUnder('drain-init', asPid1, ['--job-control'], []);
    process.kill(worker, 'SIGSTOP');
    await waitFor(() => processState(worker) === 'T' || undefined, 'the worker to stop');
    process.kill(pid, 'SIGTERM');
    await waitFor(() => recorded(file).length === 2 || undefined, 'TERM and CONT');
    process.kill(worker, 'SIGKILL');
    await run.done;
    expect(
      recorded(file)
        .map((entry) => entry.name)
        .sort(),
    ).toEqual(['SIGCONT', 'SIGTERM']);
  });

  it('sends a Sidekiq worker TERM whatever stopped drain-init: Sidekiq takes INT as TERM anyway', async () => {
    const { run, file, pid } = await recorderUnder('drain-init', asPid1, [
      '--preset',
      'sidekiq',
      '--quiet-signal',
      'none',
    ]);
    process.kill(pid, 'SIGINT');
    await run.done;
    expect(recorded(file).map((entry) => entry.name)).toEqual(['SIGTERM']);
  });
});

/** The sockets a process holds open beside its stdio (the test's pipes are socket pairs), from its file descriptors. */
function sockets(pid: number): string[] {
  return readdirSync(`/proc/${pid}/fd`).flatMap((fd) => {
    if (Number(fd) <= 2) return [];
    try {
      const target = readlinkSync(`/proc/${pid}/fd/${fd}`);
      return target.startsWith('socket:') ? [target] : [];
    } catch {
      return [];
    }
  });
}

describe('ports', () => {
  it('opens none without a Redis URL, as tini opens none; --probe-port opens the probe endpoint', async () => {
    const plain = await recorderUnder('drain-init', true);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(sockets(plain.pid)).toEqual([]);
    expect(plain.run.stderr()).not.toContain('probe endpoint');

    const asked = await recorderUnder('drain-init', true, ['--probe-port', '0']);
    expect(sockets(asked.pid)).toEqual([]);
    const port = String(20_000 + Math.floor(Math.random() * 20_000));
    const probed = await recorderUnder('drain-init', true, ['--probe-host', '127.0.0.1', '--probe-port', port]);
    await waitFor(() => probed.run.stderr().includes('probe endpoint listening') || undefined, 'the probe endpoint');
    expect(sockets(probed.pid).length).toBeGreaterThan(0);
  });
});

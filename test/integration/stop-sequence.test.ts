import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { processState } from '../../src/process/proc.js';
import { FIXTURES, killedAfterEach, logLines, recorded, startDrainInit, tempPath, waitFor } from '../helpers/pid1.js';
import { startWithProbe, waitForProbe } from '../helpers/probe.js';

const RECORDER = `${FIXTURES}recorder.py`;
const track = killedAfterEach();

const monotonicMs = () => Number(process.hrtime.bigint()) / 1e6;

async function startRecorder(options: string[], recorderFlags: string[] = []) {
  const file = tempPath('signals');
  const run = track(startDrainInit([...options, '--', RECORDER, file, ...recorderFlags]));
  await waitFor(() => existsSync(file) && readFileSync(file, 'utf8').includes('READY'), 'the recorder to start');
  return { run, file, pid: await run.pid() };
}

// TSTP at T0, TERM at 3 - 1 - 0.5 = 1.5 s, KILL at 3 - 0.5 = 2.5 s. A worker that runs gets no CONT after
// TERM (tini sends none; drain-init once did): only a suspended one is resumed, see the suspension tests.
const TIMED = [
  '--preset',
  'sidekiq',
  '--grace-period',
  '3s',
  '--shutdown-timeout',
  '1s',
  '--stop-margin',
  '500ms',
  '--kill-margin',
  '500ms',
];

describe('the stop sequence as PID 1', () => {
  it('sends TSTP, then TERM, then KILL to a worker that ignores TERM, each on time, and no CONT to a running worker', async () => {
    const { run, file, pid } = await startRecorder(TIMED);
    const t0 = monotonicMs();
    process.kill(pid, 'SIGTERM');
    const result = await run.done;
    const ended = monotonicMs() - t0;

    expect(result.code).toBe(137);
    const signals = recorded(file);
    expect(signals.map((entry) => entry.name)).toEqual(['SIGTSTP', 'SIGTERM']);
    const [tstp, term] = signals.map((entry) => entry.at - t0);
    expect(tstp).toBeLessThan(100);
    expect(Math.abs((term ?? 0) - 1_500)).toBeLessThan(100);

    const logs = logLines(result.stderr);
    const kill = logs.find((line) => String(line.msg).includes('sending SIGKILL'));
    expect(Math.abs(Number(kill?.sinceT0Ms) - 2_500)).toBeLessThan(100);
    expect(ended).toBeLessThan(3_000);
    expect(logs.find((line) => String(line.msg).startsWith('stop requested'))?.msg).toBe(
      'stop requested: TSTP now, TERM at +1.5 s, KILL at +2.5 s, deadline at +3.0 s',
    );
    expect(logs.find((line) => line.msg === 'child killed by signal')?.signal).toBe('SIGKILL');
  });

  it('exits at once with the worker status when it stops on TERM, with no timer left', async () => {
    const { run, file, pid } = await startRecorder(TIMED, ['--exit-on', 'SIGTERM']);
    const t0 = monotonicMs();
    process.kill(pid, 'SIGTERM');
    const result = await run.done;
    expect(result.code).toBe(0);
    expect(monotonicMs() - t0).toBeLessThan(2_300);
    expect(recorded(file).map((entry) => entry.name)).toEqual(['SIGTSTP', 'SIGTERM']);
  });

  it('ignores a second SIGTERM and still forwards other signals during the stop', async () => {
    const { run, file, pid } = await startRecorder(TIMED, ['--exit-on', 'SIGTERM']);
    process.kill(pid, 'SIGTERM');
    await waitFor(() => recorded(file).length === 1, 'the quiet signal');
    process.kill(pid, 'SIGTERM');
    process.kill(pid, 'SIGUSR1');
    await waitFor(() => recorded(file).length === 2, 'USR1');
    const result = await run.done;
    expect(recorded(file).map((entry) => entry.name)).toEqual(['SIGTSTP', 'SIGUSR1', 'SIGTERM']);
    expect(result.stderr).toContain('received signal again: ignored, the stop is under way');
  });

  it('moves to the next phase on a second SIGINT, and kills on a third', async () => {
    const { run, file, pid } = await startRecorder([
      '--preset',
      'sidekiq',
      '--grace-period',
      '60s',
      '--shutdown-timeout',
      '10s',
    ]);
    process.kill(pid, 'SIGINT');
    await waitFor(() => recorded(file).length === 1, 'the quiet signal');
    process.kill(pid, 'SIGINT');
    await waitFor(() => recorded(file).length === 2, 'TERM');
    process.kill(pid, 'SIGINT');
    const result = await run.done;
    expect(result.code).toBe(137);
    // The Sidekiq preset's stop signal is TERM whatever started the stop.
    expect(recorded(file).map((entry) => entry.name)).toEqual(['SIGTSTP', 'SIGTERM']);
  });

  it('never sends TSTP with the generic preset: TERM at once', async () => {
    const { run, file, pid } = await startRecorder(['--grace-period', '3s'], ['--exit-on', 'SIGTERM']);
    process.kill(pid, 'SIGTERM');
    const result = await run.done;
    expect(result.code).toBe(0);
    expect(recorded(file)[0]?.name).toBe('SIGTERM');
    expect(recorded(file).some((entry) => entry.name === 'SIGTSTP')).toBe(false);
    expect(logLines(result.stderr).find((line) => line.msg === 'stop settings')?.preset).toBe('generic');
  });

  it('resumes a worker that the quiet signal suspended, and says so', async () => {
    // Like a job-control program, this worker stops itself on TSTP. (One with no TSTP handler at
    // all is not suspended: it leads its own session, and the kernel discards a default-action
    // stop signal to an orphaned process group.)
    const worker = 'trap "kill -STOP \\$\\$" TSTP; echo $$; while :; do sleep 0.05; done';
    const run = startDrainInit([
      '--preset',
      'sidekiq',
      '--grace-period',
      '20s',
      '--shutdown-timeout',
      '5s',
      '--',
      'sh',
      '-c',
      worker,
    ]);
    track(run);
    const pid = await run.pid();
    await waitFor(() => run.stdout().trim() !== '', 'the worker');
    const hostWorker = Number(readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim());
    process.kill(pid, 'SIGTERM');
    await waitFor(() => run.stderr().includes('resumed it with SIGCONT'), 'the resume', 2_000);
    await waitFor(() => processState(hostWorker) !== 'T' || undefined, 'the worker to run again', 1_000);
    // Running again: the shell sleeps, runs, or waits in the kernel (D) while it forks its sleep.
    expect(['S', 'R', 'D']).toContain(processState(hostWorker));
  });

  it('is not suspended by a quiet signal it does not handle: its process group is orphaned', async () => {
    const run = startDrainInit([
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
    track(run);
    const pid = await run.pid();
    const sleeper = await waitFor(
      () => Number(readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim()) || undefined,
      'the sleeper',
    );
    process.kill(pid, 'SIGTERM');
    await waitFor(() => run.stderr().includes('sent quiet signal'), 'the quiet signal');
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(processState(sleeper)).toBe('S');
    expect(run.stderr()).not.toContain('resumed it with SIGCONT');
  });
});

describe('--stop-delay as PID 1', () => {
  it('lets readiness fall at once and sends the first signal when the delay ends, all counted into the plan', async () => {
    const file = tempPath('signals');
    // Delay 1 s, then TSTP; TERM at 4 - 1 - 0.5 = 2.5 s; KILL at 3.5 s.
    const args = [...TIMED.slice(0, 2), '--grace-period', '4s', ...TIMED.slice(4), '--stop-delay', '1s'];
    const { run, port } = await startWithProbe([...args, '--', RECORDER, file]);
    track(run);
    await waitFor(() => existsSync(file) && readFileSync(file, 'utf8').includes('READY'), 'the recorder to start');
    const t0 = monotonicMs();
    process.kill(await run.pid(), 'SIGTERM');
    const readiness = await waitForProbe(port, '/readyz', (answer) => answer.status === 503, 'readiness to fall');
    const fellAfter = monotonicMs() - t0;
    expect(readiness.body).toBe('delaying: drain-init is stopping the worker\n');
    expect(recorded(file)).toEqual([]);
    const result = await run.done;

    expect(fellAfter).toBeLessThan(500);
    const [tstp, term] = recorded(file).map((entry) => entry.at - t0);
    expect(recorded(file).map((entry) => entry.name)).toEqual(['SIGTSTP', 'SIGTERM']);
    expect(Math.abs((tstp ?? 0) - 1_000)).toBeLessThan(150);
    expect(Math.abs((term ?? 0) - 2_500)).toBeLessThan(150);
    expect(result.code).toBe(137);
    expect(logLines(result.stderr).find((line) => String(line.msg).startsWith('stop requested'))?.msg).toBe(
      'stop requested: TSTP at +1.0 s, TERM at +2.5 s, KILL at +3.5 s, deadline at +4.0 s',
    );
  });
});

describe('--restart-signal as PID 1', () => {
  it('stops the worker with the stop sequence and starts a new one, drain-init running on', async () => {
    const { run, file, pid } = await startRecorder(
      [...TIMED, '--stop-delay', '1s', '--restart-signal', 'HUP'],
      ['--exit-on', 'SIGTERM'],
    );
    const first = readFileSync(file, 'utf8').split('\n')[0]?.split(' ')[1];
    const t0 = monotonicMs();
    process.kill(pid, 'SIGHUP');
    // The old worker: TSTP at once (no stop delay for a restart), TERM at 1.5 s; then a new one is READY.
    await waitFor(
      () => (readFileSync(file, 'utf8').match(/^READY/gm) ?? []).length === 2 || undefined,
      'the new worker',
    );
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    expect(lines.map((line) => line.split(' ')[0])).toEqual(['READY', 'SIGTSTP', 'SIGTERM', 'READY']);
    const [tstp, term] = recorded(file)
      .slice(0, 2)
      .map((entry) => entry.at - t0);
    expect(tstp).toBeLessThan(150);
    expect(Math.abs((term ?? 0) - 1_500)).toBeLessThan(150);
    expect(lines[3]?.split(' ')[1]).not.toBe(first);
    // No HUP reached the worker: it was taken over.
    expect(recorded(file).some((entry) => entry.name === 'SIGHUP')).toBe(false);
    expect(run.process.exitCode).toBeNull();
    expect(logLines(run.stderr()).map((line) => line.msg)).toContain('restarting the worker (--restart-signal)');

    // The platform's stop then stops the new worker, with its own plan and delay, and drain-init exits.
    process.kill(pid, 'SIGTERM');
    const result = await run.done;
    expect(result.code).toBe(0);
    expect(
      logLines(result.stderr)
        .filter((line) => /^(stop|restart) requested/.test(String(line.msg)))
        .map((line) => line.msg),
    ).toEqual([
      'restart requested: TSTP now, TERM at +1.5 s, KILL at +2.5 s, deadline at +3.0 s',
      'stop requested: TSTP at +1.0 s, TERM at +1.5 s, KILL at +2.5 s, deadline at +3.0 s',
    ]);
  });
});

// Sidekiq awareness end to end: drain-init as PID 1 finds a real Sidekiq 6.4.1 in a real Redis by host and
// pid, and stops it as soon as it is quiet and idle instead of at the timed TERM.
// With --grace-period 60s and sidekiq -t 25 the timed plan is TSTP at T0, TERM at +30 s, KILL at +58 s:
// anything that stops well before +30 s did so because drain-init saw the worker drained.
import { statSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { killRun, logLines, startDrainInit, stopLikePlatform, waitFor, type Run } from '../helpers/pid1.js';
import {
  enqueue,
  markers,
  sidekiqCommand,
  sidekiqEnv,
  sidekiqTestBed,
  waitForMarker,
  waitForSidekiqBusy,
  waitForSidekiqRegistered,
} from '../helpers/sidekiq.js';

const GRACE_MS = 60_000;
const SIDEKIQ = sidekiqCommand({ timeoutS: 25, concurrency: 2 });
const TIMED_PLAN = 'stop requested: TSTP now, TERM at +30.0 s, KILL at +58.0 s, deadline at +60.0 s';

type LogLine = Record<string, unknown>;

function line(log: readonly LogLine[], msg: string): LogLine | undefined {
  return log.find((entry) => String(entry.msg).startsWith(msg));
}

describe('Sidekiq awareness with a real Sidekiq 6.4.1 under drain-init as PID 1', () => {
  const bed = sidekiqTestBed();
  let run: Run | undefined;

  afterEach(async () => {
    if (run !== undefined) await killRun(run);
    run = undefined;
  });

  function start(command: readonly string[], bootSeconds = 0): Run {
    const env = sidekiqEnv({ redisUrl: bed.redis().url, markerDir: bed.markerDir(), bootSeconds });
    run = startDrainInit(['--grace-period', `${GRACE_MS / 1000}s`, '--', ...command], { env });
    return run;
  }

  async function foundIdentities(started: Run): Promise<string[]> {
    const found = await waitFor(
      () => line(logLines(started.stderr()), 'found the worker in Sidekiq'),
      'the worker found in Sidekiq',
      20_000,
    );
    return found.identities as string[];
  }

  function childPid(started: Run): number {
    return Number(line(logLines(started.stderr()), 'started child')?.childPid);
  }

  it('finds the worker by host and pid when sidekiq is the child itself', async () => {
    const started = start(SIDEKIQ);
    const identities = await foundIdentities(started);
    expect(identities).toHaveLength(1);
    expect(identities[0]).toMatch(new RegExp(`^${hostname()}:${childPid(started)}:[0-9a-f]+$`));
  }, 30_000);

  it('finds the worker through sh -c, where Sidekiq is a grandchild of drain-init', async () => {
    // `; exit $?` keeps sh from exec-ing Sidekiq, so Sidekiq's pid is not the child's.
    const started = start(['sh', '-c', `${SIDEKIQ.join(' ')}; exit $?`]);
    const identities = await foundIdentities(started);
    expect(identities).toHaveLength(1);
    const [, pid] = (identities[0] ?? '').split(':');
    expect(Number(pid)).not.toBe(childPid(started));
    expect(identities[0]?.startsWith(`${hostname()}:`)).toBe(true);
    // Found, so the command-line-only auto preset learned that sh -c runs Sidekiq: the plan is Sidekiq's.
    const stop = await stopLikePlatform(started, GRACE_MS);
    expect(line(logLines(started.stderr()), 'stop requested')?.preset).toBe('sidekiq');
    // The quiet and stop signals went to Sidekiq itself, not to the shell that would not pass them on.
    expect(started.stdout()).toMatch(/ DEBUG: Got TSTP signal$/m);
    expect(stop).toMatchObject({ killedAtDeadline: false, code: 0 });
    expect(stop.stopMs).toBeLessThan(12_000);
  }, 50_000);

  it('stops an idle worker within about one heartbeat, not at the timed TERM', async () => {
    const started = start(SIDEKIQ);
    await waitForSidekiqRegistered(bed.redis());
    await foundIdentities(started);
    const stop = await stopLikePlatform(started, GRACE_MS);
    const log = logLines(started.stderr());

    expect(line(log, 'stop requested')?.msg).toBe(TIMED_PLAN);
    expect(line(log, 'stop requested')?.jobsInFlight).toBe(0);
    expect(line(log, 'worker is quiet and idle')).toBeDefined();
    expect(stop).toMatchObject({ killedAtDeadline: false, code: 0, signal: null });
    expect(stop.stopMs).toBeLessThan(12_000);
  }, 40_000);

  it('sends TERM to a busy worker only once its last job has ended', async () => {
    const job = await enqueue(bed.redis(), { args: [12, 'job-12s'] });
    const started = start(SIDEKIQ);
    await waitForMarker(bed.markerDir(), job.jid, 'started', 20_000);
    // Sidekiq publishes the job at its next heartbeat (5 s); drain-init reads it at its next poll (2 s).
    await waitForSidekiqBusy(bed.redis(), 1);
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    const stop = await stopLikePlatform(started, GRACE_MS);
    const log = logLines(started.stderr());

    expect(line(log, 'stop requested')?.jobsInFlight).toBe(1);
    const termSent = line(log, 'sent stop signal');
    expect(termSent?.jobsInFlight).toBe(0);
    const jobDoneAt = statSync(join(bed.markerDir(), `${job.jid}.done`)).mtimeMs;
    expect(Number(termSent?.time)).toBeGreaterThanOrEqual(Math.floor(jobDoneAt));
    expect(Number(termSent?.sinceT0Ms)).toBeLessThan(20_000);
    expect(markers(bed.markerDir())).toEqual({ started: [job.jid], done: [job.jid], interrupted: [] });
    expect(stop).toMatchObject({ killedAtDeadline: false, code: 0, signal: null });
  }, 50_000);

  it('quiets a worker that registered a moment before the SIGTERM: the stop waits for a fresh look into Redis', async () => {
    const started = start(SIDEKIQ);
    // Within a few ms of Sidekiq's registration: drain-init's last read (every 250 ms while it boots) is older.
    while ((await bed.redis().command('SCARD', 'processes')) === '0')
      await new Promise((resolve) => setTimeout(resolve, 2));
    const stop = await stopLikePlatform(started, GRACE_MS);
    const log = logLines(started.stderr());

    expect(line(log, 'the worker has not registered with Sidekiq yet')).toBeUndefined();
    expect(line(log, 'sent quiet signal')?.signal).toBe('SIGTSTP');
    expect(line(log, 'worker is quiet and idle')).toBeDefined();
    expect(stop).toMatchObject({ killedAtDeadline: false, code: 0 });
  }, 40_000);

  it('stops a worker that has not registered yet with TERM at once instead of a quiet signal it cannot handle', async () => {
    const started = start(SIDEKIQ, 20);
    await waitFor(() => line(logLines(started.stderr()), 'connected to Redis'), 'the Redis connection');
    // Time for drain-init's first look into Redis, well within the app's 20 s boot.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const stop = await stopLikePlatform(started, GRACE_MS);
    const log = logLines(started.stderr());

    expect(line(log, 'the worker has not registered with Sidekiq yet')).toBeDefined();
    expect(line(log, 'sent quiet signal')).toBeUndefined();
    expect(line(log, 'sent stop signal')?.sinceT0Ms).toBeLessThan(100);
    // Ruby's default TERM action during the boot: no job had been fetched, so none is lost.
    expect(stop).toMatchObject({ killedAtDeadline: false, code: 143 });
    expect(stop.stopMs).toBeLessThan(5_000);
  }, 30_000);
});

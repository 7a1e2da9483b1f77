// The graceful stop end to end: a real Sidekiq 6.4.1 and a real redis-server, drain-init as PID 1 of its own
// PID namespace, and the test playing the platform (SIGTERM, then SIGKILL when the grace period is over).
// With --grace-period 12s and sidekiq -t 3 the plan is TSTP at T0, TERM at 12 - 3 - 5 = +4 s, KILL at +10 s.
import { afterEach, describe, expect, it } from 'vitest';
import { killRun, logLines, startDrainInit, stopLikePlatform, type PlatformStop, type Run } from '../helpers/pid1.js';
import {
  enqueue,
  jobOutcomes,
  jobsInQueue,
  markers,
  sidekiqCommand,
  sidekiqEnv,
  sidekiqTestBed,
  waitForMarker,
  type EnqueuedJob,
} from '../helpers/sidekiq.js';

const GRACE_MS = 12_000;
const DRAIN_INIT_ARGS = ['--grace-period', `${GRACE_MS / 1000}s`];
const SIDEKIQ = sidekiqCommand({ timeoutS: 3, concurrency: 2 });
const PLAN = 'stop requested: TSTP now, TERM at +4.0 s, KILL at +10.0 s, deadline at +12.0 s';

describe('the graceful stop of a real Sidekiq 6.4.1 under drain-init as PID 1', () => {
  const bed = sidekiqTestBed();
  const server = bed.redis;
  let run: Run | undefined;

  /** Enqueues one SleepJob, starts drain-init with Sidekiq, waits until the job runs, then 1 s more, and stops it like the platform. */
  async function stopDuringJob(
    seconds: number,
  ): Promise<{ job: EnqueuedJob; stop: PlatformStop; sidekiqLog: string; drainInitLog: Record<string, unknown>[] }> {
    const job = await enqueue(server(), { args: [seconds, `job-${seconds}s`] });
    run = startDrainInit([...DRAIN_INIT_ARGS, '--', ...SIDEKIQ], {
      env: sidekiqEnv({ redisUrl: server().url, markerDir: bed.markerDir() }),
    });
    await waitForMarker(bed.markerDir(), job.jid, 'started', 15_000);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const stop = await stopLikePlatform(run, GRACE_MS);
    // Sidekiq logs to stdout, drain-init (JSON) to stderr.
    return { job, stop, sidekiqLog: run.stdout(), drainInitLog: logLines(run.stderr()) };
  }

  afterEach(async () => {
    if (run !== undefined) await killRun(run);
    run = undefined;
  });

  it('lets a 6 s job finish: TSTP at once, TERM at +4 s, exit 0 well before the deadline', async () => {
    const { job, stop, sidekiqLog, drainInitLog } = await stopDuringJob(6);

    expect(stop).toMatchObject({ killedAtDeadline: false, code: 0, signal: null });
    // The job had 5 s left at T0; Sidekiq exits once it is done, after TERM at +4 s.
    expect(stop.stopMs).toBeGreaterThan(4_000);
    expect(stop.stopMs).toBeLessThan(GRACE_MS);
    expect(drainInitLog.find((line) => String(line.msg).startsWith('stop requested'))?.msg).toBe(PLAN);
    const termSent = drainInitLog.find((line) => line.msg === 'sent stop signal');
    expect(termSent?.signal).toBe('SIGTERM');
    expect(Math.abs(Number(termSent?.sinceT0Ms) - 4_000)).toBeLessThan(200);

    const tstp = sidekiqLog.search(/ DEBUG: Got TSTP signal$/m);
    const term = sidekiqLog.search(/ DEBUG: Got TERM signal$/m);
    expect(tstp).toBeGreaterThanOrEqual(0);
    expect(term).toBeGreaterThan(tstp);
    expect(sidekiqLog).toMatch(/ INFO: Bye!$/m);
    expect(markers(bed.markerDir())).toEqual({ started: [job.jid], done: [job.jid], interrupted: [] });
    expect(await jobsInQueue(server())).toEqual([]);
  }, 30_000);

  it('lets Sidekiq requeue a 30 s job itself at its timeout, byte-identical, and exits before the deadline', async () => {
    const { job, stop, sidekiqLog } = await stopDuringJob(30);

    expect(stop).toMatchObject({ killedAtDeadline: false, code: 0, signal: null });
    // TERM at +4 s, then Sidekiq's -t 3: the hard shutdown comes at about +7 s, before KILL at +10 s.
    expect(stop.stopMs).toBeGreaterThan(6_000);
    expect(stop.stopMs).toBeLessThan(10_000);
    expect(sidekiqLog).toMatch(/ DEBUG: Got TSTP signal$/m);
    expect(sidekiqLog).toMatch(/ INFO: Pushed 1 jobs back to Redis$/m);
    expect(await jobsInQueue(server())).toEqual([job.payload]);
    expect(await jobOutcomes(server(), bed.markerDir(), [job])).toEqual([
      { jid: job.jid, fate: 'requeued', started: true, interrupted: true, identical: true },
    ]);
    expect(markers(bed.markerDir()).done).toEqual([]);
  }, 30_000);
});

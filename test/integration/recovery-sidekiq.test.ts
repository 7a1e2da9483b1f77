// Job recovery end to end with a real Sidekiq 6.4.1 under drain-init as PID 1: a job Redis showed only in
// the dead worker's last heartbeat, --restart on-failure (the restarted worker runs the requeued job; a
// SIGTERM during the backoff ends drain-init), and a dead peer's record raced for by two live instances.
import { describe, expect, it } from 'vitest';
import { childOf, killedAfterEach, logLines, startDrainInit, waitFor, type Run } from '../helpers/pid1.js';
import {
  enqueue,
  jobsInQueue,
  markerRuns,
  sidekiqCommand,
  sidekiqEnv,
  sidekiqProcesses,
  sidekiqTestBed,
  waitForMarker,
  type EnqueuedJob,
} from '../helpers/sidekiq.js';

const DRAIN_INIT_ARGS = ['--grace-period', '10s', '--probe-port', '0'];
const RECORD_INDEX = 'drain-init:job-records';

describe('job recovery with a real Sidekiq under drain-init as PID 1', () => {
  const bed = sidekiqTestBed();
  const track = killedAfterEach();

  function start(args: readonly string[], env: Record<string, string> = {}, concurrency = 2): Run {
    const sidekiq = sidekiqEnv({ redisUrl: bed.redis().url, markerDir: bed.markerDir(), logLevel: 'warn' });
    return track(
      startDrainInit([...DRAIN_INIT_ARGS, ...args, '--', ...sidekiqCommand({ concurrency })], {
        env: { ...sidekiq, ...env },
      }),
    );
  }

  /** SIGKILLs the worker, drain-init's child. */
  async function killWorker(run: Run): Promise<void> {
    const drainInit = await run.pid();
    process.kill(await waitFor(() => childOf(drainInit), 'the worker'), 'SIGKILL');
  }

  /** The first log line whose message starts with `msg`, once drain-init has written it. */
  function logged(run: Run, msg: string): Promise<Record<string, unknown>> {
    return waitFor(
      () => logLines(run.stderr()).find((line) => String(line.msg).startsWith(msg)),
      `log line "${msg}"`,
      20_000,
    );
  }

  async function recordHolds(instanceId: string, jid: string): Promise<boolean> {
    return Number(await bed.redis().call('HEXISTS', `drain-init:jobs:${instanceId}`, jid)) === 1;
  }

  /**
   * Polls every 20 ms until a heartbeat shows the job in a work hash; resolves whether drain-init's record
   * did not hold it yet at that moment.
   */
  async function shownInHeartbeatFirst(instanceId: string, jid: string): Promise<boolean> {
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      for (const process of await sidekiqProcesses(bed.redis())) {
        const entries = await bed.redis().call('HVALS', `${process.identity}:workers`);
        if (Array.isArray(entries) && entries.some((entry) => String(entry).includes(jid)))
          return !(await recordHolds(instanceId, jid));
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    throw new Error(`no heartbeat showed ${jid}`);
  }

  it("recovers a job that only the dead worker's last heartbeat shows, before drain-init's next read", async () => {
    // The heartbeat mirror's case: the Redis endpoint would record the job at its fetch, long before a beat.
    const run = start(['--instance-id', 'last-beat', '--redis-endpoint', 'off'], {}, 3);
    // drain-init reads every 2 s, Sidekiq beats every 5 s: the kill comes within ~20 ms of the beat that
    // first shows a job, so drain-init has not mirrored it yet (checked; else the next job is the trial).
    let trial: EnqueuedJob | undefined;
    for (let attempt = 0; attempt < 3 && trial === undefined; attempt++) {
      const job = await enqueue(bed.redis(), { args: [30, `last-beat-${attempt}`] });
      if (await shownInHeartbeatFirst('last-beat', job.jid)) trial = job;
    }
    if (trial === undefined) throw new Error('drain-init mirrored every job before the test could kill the worker');
    await killWorker(run);

    const { code, stderr } = await run.done;
    expect(code).toBe(137);
    const recovered = logLines(stderr).find((line) => line.msg === 'recovered the jobs of a dead worker');
    expect(recovered).toMatchObject({ instanceId: 'last-beat' });
    expect(await jobsInQueue(bed.redis())).toContain(trial.payload);
  }, 60_000);

  /** Enqueues a job and waits until drain-init's record holds it (recorded at its fetch). */
  async function mirroredJob(instanceId: string, seconds: number): Promise<EnqueuedJob> {
    const job = await enqueue(bed.redis(), { args: [seconds, instanceId] });
    await waitForMarker(bed.markerDir(), job.jid, 'started', 30_000);
    await waitForAsync(() => recordHolds(instanceId, job.jid), `${job.jid} in the record of ${instanceId}`);
    return job;
  }

  it('--restart on-failure: the worker SIGKILLed, its job requeued, the worker restarted after the delay runs it', async () => {
    const run = start(['--instance-id', 'restart', '--restart', 'on-failure', '--restart-delay', '2s']);
    const job = await mirroredJob('restart', 12);
    await killWorker(run);

    const restarting = await logged(run, 'restarting the worker in ');
    expect(restarting).toMatchObject({
      level: 40,
      cause: 'worker killed by signal SIGKILL',
      delayMs: 2_000,
      restarts: 1,
    });
    await waitForMarker(bed.markerDir(), job.jid, 'done', 30_000);
    const log = logLines(run.stderr());
    const recovered = log.findIndex((line) => line.msg === 'recovered the jobs of a dead worker');
    expect(log[recovered]).toMatchObject({ instanceId: 'restart', requeued: 1 });
    // Requeued before the restart, and the restart waited out the delay.
    expect(recovered).toBeLessThan(log.findIndex((line) => line.msg === restarting.msg));
    const starts = log.filter((line) => line.msg === 'started child');
    expect(starts).toHaveLength(2);
    expect(Number(starts[1]?.time) - Number(restarting.time)).toBeGreaterThanOrEqual(2_000);
    expect(markerRuns(bed.markerDir(), 'started').get(job.jid)).toHaveLength(2);
    expect(markerRuns(bed.markerDir(), 'done').get(job.jid)).toHaveLength(1);

    process.kill(await run.pid(), 'SIGTERM');
    expect((await run.done).code).toBe(0);
  }, 60_000);

  it('--restart on-failure: a SIGTERM during the backoff ends drain-init with the worker status, no restart', async () => {
    const run = start(['--instance-id', 'backoff', '--restart', 'on-failure', '--restart-delay', '30s']);
    const job = await mirroredJob('backoff', 30);
    await killWorker(run);
    await logged(run, 'restarting the worker in ');

    const sigterm = Date.now();
    process.kill(await run.pid(), 'SIGTERM');
    const { code, stderr } = await run.done;
    expect(code).toBe(137);
    // Well before the 30 s delay was over.
    expect(Date.now() - sigterm).toBeLessThan(10_000);
    expect(logLines(stderr).filter((line) => line.msg === 'started child')).toHaveLength(1);
    expect(await jobsInQueue(bed.redis())).toEqual([job.payload]);
  }, 60_000);

  it("a dead peer's record is recovered by exactly one of two live instances racing for it, each job once", async () => {
    const dead = 'pod-dead';
    const jobs: EnqueuedJob[] = [];
    for (let index = 0; index < 20; index++) jobs.push(await enqueue(bed.redis(), { args: [0.2, `peer-${index}`] }));
    // The jobs a SIGKILLed peer was running: in its record only (no instance hash), listed in the index.
    const entries = jobs.flatMap((job) => [
      job.jid,
      JSON.stringify({ identity: `${dead}:1:0123456789ab`, queue: 'default', payload: job.payload }),
    ]);
    await bed.redis().pipeline([
      ['DEL', 'queue:default'],
      ['HSET', `drain-init:jobs:${dead}`, ...entries],
      ['HSET', RECORD_INDEX, dead, 'token-of-the-dead'],
    ]);

    const racers = ['pod-a', 'pod-b'].map((id) => start(['--instance-id', id], { DYNO: id }, 5));
    await waitForAsync(async () => markerRuns(bed.markerDir(), 'done').size === jobs.length, 'every job done');
    // Time for a second copy of any job to run too.
    await new Promise((resolve) => setTimeout(resolve, 2_000));

    const recoveries = racers.flatMap((run) =>
      logLines(run.stderr()).filter(
        (line) => line.msg === 'recovered the jobs of a dead worker' && line.instanceId === dead,
      ),
    );
    expect(recoveries).toHaveLength(1);
    expect(recoveries[0]).toMatchObject({ requeued: jobs.length, running: 0, queued: 0 });
    const done = markerRuns(bed.markerDir(), 'done');
    expect(jobs.map((job) => done.get(job.jid)?.length)).toEqual(jobs.map(() => 1));
    expect(await jobsInQueue(bed.redis())).toEqual([]);
    expect(await bed.redis().call('EXISTS', `drain-init:jobs:${dead}`)).toBe(0);
    expect(await bed.redis().call('HKEYS', RECORD_INDEX)).not.toContain(dead);
  }, 60_000);
});

async function waitForAsync(probe: () => Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

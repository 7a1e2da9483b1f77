// Recovery that never harms, with a real Sidekiq 6.4.1 under drain-init as PID 1: two drain-inits of one host
// never share a record (a live worker's job is never run twice at once), a restart after the whole namespace
// was killed recovers its own record within one heartbeat interval, and a job that kills its worker every
// time goes to Sidekiq's Dead set after three deaths while the jobs beside it run.
import { describe, expect, it } from 'vitest';
import { parseExposition } from '../helpers/exposition.js';
import { probeRequest } from '../helpers/probe.js';
import { freePort } from '../helpers/redis.js';
import { eventually, killedAfterEach, logLines, startDrainInit, waitFor, type Run } from '../helpers/pid1.js';
import {
  enqueue,
  jobsInQueue,
  markerRuns,
  sidekiqCommand,
  sidekiqEnv,
  sidekiqTestBed,
  waitForMarker,
  waitForSidekiqRegistered,
  type EnqueuedJob,
} from '../helpers/sidekiq.js';

const HEARTBEAT_MS = 3_000;
const ARGS = ['--grace-period', '20s', '--probe-port', '0', '--heartbeat-interval', `${HEARTBEAT_MS}ms`];

describe('one live owner per record', () => {
  const bed = sidekiqTestBed();
  const track = killedAfterEach();

  function start(args: readonly string[], env: Record<string, string> = {}, concurrency = 2): Run {
    const sidekiq = sidekiqEnv({ redisUrl: bed.redis().url, markerDir: bed.markerDir(), logLevel: 'warn' });
    return track(
      startDrainInit([...ARGS, ...args, '--', ...sidekiqCommand({ concurrency })], { env: { ...sidekiq, ...env } }),
    );
  }

  const logged = (run: Run, start: string): Promise<Record<string, unknown>> =>
    waitFor(() => logLines(run.stderr()).find((line) => String(line.msg).startsWith(start)), `"${start}"`, 20_000);

  it("never touches a live drain-init's record: two of one host, the second started while the first runs a job", async () => {
    const first = start([]);
    await waitForSidekiqRegistered(bed.redis());
    const job = await enqueue(bed.redis(), { args: [8, 'shared-host'] });
    await waitForMarker(bed.markerDir(), job.jid, 'started');

    const second = start([]);
    const warning = await logged(second, "instance id '");
    expect(String(warning.msg)).toMatch(/belongs to a live drain-init \(pid 1 on .+\): this one tries '.+-2'/);
    const told = await logged(first, 'another drain-init (pid 1 on ');
    expect(String(told.msg)).toMatch(/it took '.+-2' instead$/);

    await waitForMarker(bed.markerDir(), job.jid, 'done', 20_000);
    await new Promise((resolve) => setTimeout(resolve, 2 * HEARTBEAT_MS));
    expect(markerRuns(bed.markerDir(), 'started').get(job.jid)).toHaveLength(1);
    expect(await jobsInQueue(bed.redis())).toEqual([]);
    expect(logLines(second.stderr()).filter((line) => line.msg === 'recovered the jobs of a dead worker')).toEqual([]);
  }, 60_000);

  it('recovers its own record within one heartbeat interval after the whole namespace was killed, not its TTL', async () => {
    const killed = start(['--instance-id', 'restarted']);
    await waitForSidekiqRegistered(bed.redis());
    const job = await enqueue(bed.redis(), { args: [30, 'killed-whole'] });
    await waitForMarker(bed.markerDir(), job.jid, 'started');
    process.kill(await killed.pid(), 'SIGKILL');
    await killed.done;

    const restarted = Date.now();
    const again = start(['--instance-id', 'restarted']);
    const recovered = await logged(again, 'recovered the jobs of a dead worker');
    expect(recovered).toMatchObject({ instanceId: 'restarted', requeued: 1 });
    expect(Number(recovered.time) - restarted).toBeLessThan(HEARTBEAT_MS);
    await eventually(
      async () => (markerRuns(bed.markerDir(), 'started').get(job.jid)?.length === 2 ? true : undefined),
      'the job started again',
    );
  }, 60_000);

  it("sends a job that kills its worker each time to Sidekiq's Dead set after three deaths; the jobs beside it run", async () => {
    const port = await freePort();
    const args = ['--instance-id', 'dead-set', '--restart', 'always', '--restart-delay', '500ms'];
    const run = start([...args, '--probe-host', '127.0.0.1', '--probe-port', String(port)], {}, 3);
    const killer = await enqueue(bed.redis(), { jobClass: 'KillerJob', args: ['poison', 0.5] });
    const others: EnqueuedJob[] = [];
    for (let index = 0; index < 10; index++)
      others.push(await enqueue(bed.redis(), { args: [0.3, `beside-${index}`] }));

    const dead = await eventually(
      async () => {
        const entries = (await bed.redis().call('ZRANGE', 'dead', 0, -1)) as string[];
        return entries.length > 0 ? entries : undefined;
      },
      'the Dead set',
      45_000,
    );
    expect(dead).toHaveLength(1);
    expect(JSON.parse(dead[0] ?? '{}')).toMatchObject({
      jid: killer.jid,
      class: 'KillerJob',
      error_class: 'DrainInit::WorkerDied',
      error_message: expect.stringContaining('died 3 times in 72 h (last: killed by signal SIGKILL)'),
    });
    // A bystander that finished but was not yet acked when its worker died is held too, though its "done"
    // marker is there: held jobs go back one at a time, each once a heartbeat shows it finished.
    const metrics = async () => parseExposition((await probeRequest(port, '/metrics')).body);
    const value = (exposition: Awaited<ReturnType<typeof metrics>>, name: string, labels = {}) =>
      exposition.get(name)?.samples.find((sample) => JSON.stringify(sample.labels) === JSON.stringify(labels))?.value;
    const done = () => new Set(markerRuns(bed.markerDir(), 'done').keys());
    const settled = await eventually(
      async () => {
        const exposition = await metrics();
        const allDone = others.every((job) => done().has(job.jid));
        return allDone && value(exposition, 'drain_init_jobs_held') === 0 ? exposition : undefined;
      },
      'the 10 others done and no job held',
      90_000,
    ).catch(async (error: unknown) => {
      const missing = others.filter((job) => !done().has(job.jid)).map((job) => job.jid);
      const held = value(await metrics(), 'drain_init_jobs_held');
      const record = await bed.redis().call('HKEYS', 'drain-init:jobs:dead-set');
      throw new Error(
        `${String(error)}: not done [${missing.join(', ')}]; held ${held}; record ${JSON.stringify(record)}`,
      );
    });
    expect(markerRuns(bed.markerDir(), 'started').get(killer.jid)).toHaveLength(3);
    expect((await jobsInQueue(bed.redis())).includes(killer.payload)).toBe(false);
    const buried = await logged(run, "job moved to Sidekiq's Dead set");
    expect(buried).toMatchObject({ jid: killer.jid, class: 'KillerJob', queue: 'default', deaths: 3 });
    expect(JSON.stringify(buried)).not.toContain('poison');
    expect(value(settled, 'drain_init_jobs_dead_total')).toBe(1);
    expect(value(settled, 'drain_init_worker_deaths_total', { cause: 'signal' })).toBe(3);
    expect(value(settled, 'drain_init_worker_deaths_total', { cause: 'oom-killed' })).toBe(0);
  }, 150_000);

  it('puts held jobs back one at a time, and the ones still held back in their queue when drain-init stops', async () => {
    const jobs: EnqueuedJob[] = [];
    for (const name of ['held-a', 'held-b', 'held-c']) jobs.push(await enqueue(bed.redis(), { args: [30, name] }));
    await bed.redis().call('DEL', 'queue:default');
    // What a restart finds after its worker died twice running them: the jobs held in its record.
    const twice = `2:${Date.now()}`;
    for (const job of jobs) {
      const entry = JSON.stringify({ held: true, queue: 'default', payload: job.payload, process: 'gone:1' });
      await bed.redis().call('HSET', 'drain-init:jobs:held-end', job.jid, entry);
      await bed.redis().call('HSET', 'drain-init:job-deaths', job.jid, twice);
    }

    const run = start(['--instance-id', 'held-end'], {}, 3);
    const started = () => markerRuns(bed.markerDir(), 'started');
    const released = await eventually(
      async () => jobs.find((job) => started().has(job.jid)),
      'one of the held jobs started',
      20_000,
    );
    const others = jobs.filter((job) => job !== released);
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    for (const job of others) {
      expect(started().get(job.jid)).toBeUndefined();
      expect(await bed.redis().call('HEXISTS', 'drain-init:jobs:held-end', job.jid)).toBe(1);
    }

    // Sidekiq requeues the running one; the one released after it is not fetched by a quiet worker; the
    // last is still held at the end.
    process.kill(await run.pid(), 'SIGTERM');
    await run.done;
    const queue = await jobsInQueue(bed.redis());
    for (const job of jobs) expect(queue.includes(job.payload)).toBe(true);
    expect(await bed.redis().call('EXISTS', 'drain-init:jobs:held-end')).toBe(0);
    const putBack = logLines(run.stderr()).filter((line) => line.msg === 'a held job went back to its queue, alone');
    expect(putBack).toHaveLength(3);
  }, 60_000);
});

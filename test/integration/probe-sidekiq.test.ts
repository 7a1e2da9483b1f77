// The probe endpoint with a real Sidekiq 6.4.1 under drain-init as PID 1: readiness follows Sidekiq's
// registration and quiet flag, liveness its heartbeat, and a Redis outage never fails liveness.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { killedAfterEach, waitFor } from '../helpers/pid1.js';
import { parseExposition } from '../helpers/exposition.js';
import { probeRequest, probeStatus, startWithProbe, waitForProbe } from '../helpers/probe.js';
import { startRedis } from '../helpers/redis.js';
import { sidekiqCommand, sidekiqEnv, sidekiqTestBed } from '../helpers/sidekiq.js';

const SIDEKIQ = sidekiqCommand({ timeoutS: 3, concurrency: 2 });
const track = killedAfterEach();

/** The host pid of drain-init's child, the Sidekiq process. */
async function workerPid(initPid: number): Promise<number> {
  return waitFor(
    () => Number(readFileSync(`/proc/${initPid}/task/${initPid}/children`, 'utf8').trim()) || undefined,
    'the worker',
  );
}

describe('the probe endpoint with a real Sidekiq 6.4.1', () => {
  const bed = sidekiqTestBed();

  it('is not ready while Sidekiq boots, ready once it has beaten, and not ready once it is quiet', async () => {
    const env = sidekiqEnv({ redisUrl: bed.redis().url, markerDir: bed.markerDir(), bootSeconds: 3 });
    const { run, port } = await startWithProbe(['--', ...SIDEKIQ], { env });
    track(run);

    expect(await probeRequest(port, '/readyz')).toMatchObject({
      status: 503,
      body: 'waiting for the first Sidekiq heartbeat of the worker\n',
    });
    expect((await probeRequest(port, '/livez')).status).toBe(200);
    expect(await probeStatus(port)).toMatchObject({
      state: 'running',
      redisConnected: true,
      sidekiq: { processes: [], lastBeatAgeSeconds: null },
    });

    await waitForProbe(
      port,
      '/readyz',
      (answer) => answer.status === 200,
      'readiness after the first heartbeat',
      30_000,
    );
    const status = await probeStatus(port);
    expect(status).toMatchObject({ sidekiq: { processes: [{ busy: 0, quiet: false }], jobsInFlight: 0 } });
    const identity = (status.sidekiq as { processes: { identity: string }[] }).processes[0]?.identity ?? '';
    expect(identity).toMatch(/^[^:]+:\d+:[0-9a-f]{12}$/);

    // TSTP is forwarded as it comes: Sidekiq goes quiet while drain-init itself keeps running.
    process.kill(await run.pid(), 'SIGTSTP');
    const quiet = await waitForProbe(
      port,
      '/readyz',
      (answer) => answer.status === 503,
      'readiness to fall on quiet',
      15_000,
    );
    expect(quiet.body).toBe(`Sidekiq process ${identity} is quiet: it takes no new job\n`);
    expect((await probeRequest(port, '/livez')).status).toBe(200);
    const families = parseExposition((await probeRequest(port, '/metrics')).body);
    expect(families.get('sidekiq_processes')?.samples).toEqual([{ labels: {}, value: 1 }]);
    expect(families.get('drain_init_signals_forwarded_total')?.samples).toEqual([
      { labels: { signal: 'SIGTSTP' }, value: 1 },
    ]);
  }, 60_000);

  it('fails liveness on a stale heartbeat while Redis answers, and never for a Redis outage', async () => {
    const redis = await startRedis();
    try {
      const env = sidekiqEnv({ redisUrl: redis.url, markerDir: bed.markerDir() });
      // --job-control leaves the worker suspended by the test's SIGSTOP, as a hung worker would stay.
      const { run, port } = await startWithProbe(['--max-beat-age', '8s', '--job-control', '--', ...SIDEKIQ], { env });
      track(run);
      await waitForProbe(port, '/readyz', (answer) => answer.status === 200, 'the first heartbeat', 30_000);
      const sidekiq = await workerPid(await run.pid());

      // A hung worker: alive as a process, but its heartbeat stops.
      process.kill(sidekiq, 'SIGSTOP');
      const stale = await waitForProbe(port, '/livez', (answer) => answer.status === 503, 'liveness to fail', 30_000);
      expect(stale.body).toMatch(/^the worker's last Sidekiq heartbeat is (\d+) s old, more than --max-beat-age 8s\n$/);
      // sidekiq_alive's path fails as sidekiq_alive did, so a liveness probe carried over restarts the pod too.
      expect(await probeRequest(port, '/')).toMatchObject({
        status: 404,
        body: expect.stringMatching(/^Can't find the alive key: the worker's last/),
      });
      process.kill(sidekiq, 'SIGCONT');
      await waitForProbe(
        port,
        '/livez',
        (answer) => answer.status === 200,
        'liveness after the worker resumed',
        20_000,
      );

      // Sidekiq cannot beat without Redis, yet liveness holds well past --max-beat-age.
      await redis.stop();
      const outageStart = Date.now();
      let last = await probeRequest(port, '/livez');
      while (Date.now() - outageStart < 15_000) {
        expect(last.status).toBe(200);
        await new Promise((resolve) => setTimeout(resolve, 500));
        last = await probeRequest(port, '/livez');
      }
      expect(last).toMatchObject({
        status: 200,
        body: 'alive; Redis does not answer, so the Sidekiq heartbeat is not checked\n',
      });
      const families = parseExposition((await probeRequest(port, '/metrics')).body);
      expect(families.get('drain_init_redis_up')?.samples).toEqual([{ labels: {}, value: 0 }]);
    } finally {
      await redis.stop();
    }
  }, 120_000);
});

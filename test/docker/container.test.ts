// drain-init's single executable as the ENTRYPOINT of a real image (Dockerfile.example, built on a local
// Debian image with no Node), driven by the Docker CLI: docker stop, docker kill, a read-only root.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURES, logLines, recorded, waitFor } from '../helpers/pid1.js';
import { connectRedis, freePort } from '../helpers/redis.js';
import {
  enqueue,
  expectOomKillRecovered,
  jobsInQueue,
  markerRuns,
  markers,
  sidekiqCommand,
  sidekiqEnv,
  sidekiqTestBed,
  waitForMarker,
  waitForSidekiqRegistered,
  type EnqueuedJob,
} from '../helpers/sidekiq.js';
import {
  COMPOSE_FILES,
  WORKER_IMAGE,
  buildWorkerImage,
  type TestImages,
  docker,
  exec,
  exitCode,
  logs,
  removedAfterEach,
  runDetached,
  stopTimed,
  uniqueName,
  zombies,
} from './docker.js';

const BUILD_TIMEOUT_MS = 20 * 60_000;

let images: TestImages | undefined;
beforeAll(async () => {
  images = await buildWorkerImage();
}, BUILD_TIMEOUT_MS);

const removed = removedAfterEach();
const scratchDirs: string[] = [];
afterEach(() => {
  for (const dir of scratchDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});
function scratchDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'drain-init-docker-'));
  scratchDirs.push(dir);
  return dir;
}

/** drain-init's JSON lines among everything the container wrote. */
async function drainInitLog(container: string): Promise<Record<string, unknown>[]> {
  return logLines(await logs(container)).filter((line) => line.name === 'drain-init');
}

async function waitForAsync(probe: () => Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

async function waitForLog(container: string, pattern: RegExp): Promise<void> {
  await waitForAsync(async () => pattern.test(await logs(container)), `${String(pattern)} in the logs of ${container}`);
}

describe('docker-compose: Redis and a Sidekiq worker', () => {
  const GRACE_S = 12;

  /** The compose example with the tests' additions, as project `project`; `down` after the test. */
  async function composeProject(prefix: string) {
    const project = uniqueName(prefix);
    const redisPort = await freePort();
    const markerDir = scratchDir();
    const env = {
      BASE_IMAGE: images?.BASE_IMAGE ?? '',
      WORKER_IMAGE,
      REDIS_PORT: String(redisPort),
      PROBE_PORT: String(await freePort()),
      GRACE_PERIOD: `${GRACE_S}s`,
      SIDEKIQ_TIMEOUT: '3',
      MARKER_DIR: markerDir,
    };
    const compose = (...args: string[]): Promise<string> =>
      exec('docker-compose', ['-p', project, ...COMPOSE_FILES.flatMap((file) => ['-f', file]), ...args], env).then(
        (output) => output.stdout.trim(),
      );
    return { compose, redis: connectRedis(redisPort), markerDir };
  }

  it(`docker stop -t ${GRACE_S} during a 6 s job: TSTP then TERM, the job finishes, exit 0 within the grace period`, async () => {
    const { compose, redis, markerDir } = await composeProject('compose');
    try {
      await compose('up', '-d');
      const worker = await compose('ps', '-q', 'worker');
      await waitForSidekiqRegistered(redis, { timeoutMs: 30_000 });
      // Until drain-init has found its worker in Redis, a stop skips the quiet phase (Sidekiq's traps may not be in).
      await waitForLog(worker, /"msg":"found the worker in Sidekiq"/);
      const job = await enqueue(redis, { args: [6, 'long'] });
      await waitForMarker(markerDir, job.jid, 'started');

      const stopMs = await stopTimed(worker, GRACE_S);

      expect(markers(markerDir).done).toEqual([job.jid]);
      expect(await exitCode(worker)).toBe(0);
      expect(stopMs).toBeLessThan(GRACE_S * 1000);
      const sent = (await drainInitLog(worker))
        .filter((line) => line.msg === 'sent quiet signal' || line.msg === 'sent stop signal')
        .map((line) => line.signal);
      expect(sent).toEqual(['SIGTSTP', 'SIGTERM']);
      const received = [...(await logs(worker)).matchAll(/Got (TSTP|TERM) signal/g)].map((match) => match[1]);
      expect(received).toEqual(['TSTP', 'TERM']);
    } finally {
      await compose('down', '-t', '0');
    }
  });

  it('--scale worker=2 on the host network (one host name): a job the first runs while the second starts runs once', async () => {
    const { compose, redis, markerDir } = await composeProject('scaled');
    try {
      await compose('up', '-d');
      const first = await compose('ps', '-q', 'worker');
      await waitForSidekiqRegistered(redis, { timeoutMs: 30_000 });
      await waitForLog(first, /"msg":"found the worker in Sidekiq"/);
      const job = await enqueue(redis, { args: [12, 'shared-host'] });
      await waitForMarker(markerDir, job.jid, 'started');

      await compose('up', '-d', '--scale', 'worker=2', '--no-recreate');
      const second = (await compose('ps', '-q', 'worker')).split('\n').find((id) => id !== first) ?? '';
      await waitForLog(second, /"msg":"found the worker in Sidekiq"/);
      await waitForMarker(markerDir, job.jid, 'done', 30_000);
      // Long enough for a wrongful recovery: the second's own record at start, its peer scan, two heartbeats.
      await sleep(6_000);

      expect(markers(markerDir)).toMatchObject({ started: [job.jid], done: [job.jid] });
      expect(await jobsInQueue(redis)).toEqual([]);
      for (const worker of [first, second]) {
        const recovered = (await drainInitLog(worker)).filter(
          (line) => line.msg === 'recovered the jobs of a dead worker',
        );
        expect(recovered).toEqual([]);
      }
      // One host name, two records: each container's id carries its own container id.
      const ids = (await redis.call('ZRANGE', 'drain-init:instances', 0, -1)) as string[];
      const hostname = (await exec('hostname', [])).stdout.trim();
      expect(ids.sort()).toEqual([`${hostname}/${first.slice(0, 12)}`, `${hostname}/${second.slice(0, 12)}`].sort());
    } finally {
      await compose('down', '-t', '0');
    }
  }, 120_000);
});

describe('docker run: the worker under drain-init as PID 1', () => {
  it('docker kill -s HUP, USR1 and TTIN reach the worker', async () => {
    const out = scratchDir();
    const container = removed(
      await runDetached(
        uniqueName('kill'),
        ['-v', `${FIXTURES}:/fixtures:ro`, '-v', `${out}:/out`],
        ['python3', '/fixtures/recorder.py', '/out/record'],
      ),
    );
    const record = join(out, 'record');
    // The recorder writes its READY line once its signals are blocked, before it waits for them.
    await waitFor(() => existsSync(record) || undefined, 'the recorder to start', 20_000);
    for (const signal of ['HUP', 'USR1', 'TTIN']) {
      await docker('kill', '-s', signal, container);
      await waitFor(
        () => recorded(record).some((entry) => entry.name === `SIG${signal}`) || undefined,
        `SIG${signal} recorded by the worker`,
      );
    }
    expect(recorded(record).map((entry) => entry.name)).toEqual(['SIGHUP', 'SIGUSR1', 'SIGTTIN']);
  });

  it("the image's HEALTHCHECK is healthy through drain-init's probe", async () => {
    const container = removed(
      await runDetached(
        uniqueName('health'),
        ['--health-interval', '1s', '--health-start-period', '0s'],
        ['sleep', '600'],
      ),
    );
    await waitForAsync(
      async () => (await docker('inspect', '-f', '{{.State.Health.Status}}', container)) === 'healthy',
      `${container} healthy`,
    );
  });

  it('a worker that ignores TERM: drain-init kills it before Docker does and exits 137', async () => {
    const graceS = 6;
    const container = removed(
      await runDetached(
        uniqueName('ignore-term'),
        ['-e', `DRAIN_INIT_GRACE_PERIOD=${graceS}s`],
        ['sh', '-c', 'trap "" TERM; echo ready; while :; do sleep 1; done'],
      ),
    );
    await waitForLog(container, /^ready$/m);

    const stopMs = await stopTimed(container, graceS);

    expect(await exitCode(container)).toBe(137);
    // drain-init's kill margin is 2 s: Docker's own SIGKILL would come at the full grace period.
    expect(stopMs).toBeLessThan(graceS * 1000 - 1000);
    const messages = (await drainInitLog(container)).map((line) => line.msg);
    expect(messages).toContain('the worker is still running: sending SIGKILL to its process group');
    expect((await drainInitLog(container)).find((line) => line.msg === 'child killed by signal')).toMatchObject({
      signal: 'SIGKILL',
      exitCode: 137,
    });
  });

  it("without a grace period set: Docker's 10 s, a warning at start that Sidekiq's 25 s does not fit, and the kill before Docker's", async () => {
    const container = removed(
      await runDetached(
        uniqueName('docker-grace'),
        ['-e', 'DRAIN_INIT_PRESET=sidekiq'],
        ['sh', '-c', 'trap "" TERM; echo ready; while :; do sleep 1; done'],
      ),
    );
    await waitForLog(container, /^ready$/m);
    const atStart = await drainInitLog(container);
    expect(atStart.find((line) => line.msg === 'stop settings')).toMatchObject({
      gracePeriod: '10s',
      gracePeriodSource: 'Docker: the default of docker stop and compose',
    });
    expect(atStart.filter((line) => line.level === 40).map((line) => line.msg)).toContain(
      'the stop plan does not fit: shutdown timeout 25s + stop margin 5s do not fit in the grace period 10s: SIGTERM at once; ' +
        'give the platform a grace period of at least 30s (terminationGracePeriodSeconds, ECS stopTimeout, ' +
        'compose stop_grace_period, docker stop -t), or a shorter shutdown timeout',
    );

    // docker stop's own default: 10 s.
    const start = performance.now();
    await docker('stop', container);
    const stopMs = performance.now() - start;

    // drain-init planned for Docker's deadline: its own KILL at +8 s, so it exits 137 itself, before Docker's.
    expect(await exitCode(container)).toBe(137);
    expect(stopMs).toBeLessThan(9_500);
    const messages = (await drainInitLog(container)).map((line) => line.msg);
    expect(messages).toContain('stop requested: TERM now, KILL at +8.0 s, deadline at +10.0 s');
    expect(messages).toContain('child killed by signal');
  });

  it('zombies stay at 0 while the worker spawns and abandons children', async () => {
    const container = removed(
      await runDetached(
        uniqueName('orphans'),
        ['-v', `${FIXTURES}:/fixtures:ro`],
        ['sh', '/fixtures/orphans.sh', '300'],
      ),
    );
    await waitForLog(container, /^spawned$/m);
    // The orphans exit 0.3 s after they were spawned; each one is a zombie until its parent reaps it.
    await sleep(1000);
    for (let sample = 0; sample < 5; sample++) {
      expect(await zombies(container)).toBe(0);
      await sleep(200);
    }
  });

  it('without drain-init, under a PID 1 that does not reap, the same worker leaves zombies (the count above sees them)', async () => {
    const container = removed(
      await runDetached(
        uniqueName('no-init'),
        ['-v', `${FIXTURES}:/fixtures:ro`, '--entrypoint', 'python3'],
        ['-c', "import subprocess, time; subprocess.Popen(['sh', '/fixtures/orphans.sh', '300']); time.sleep(600)"],
      ),
    );
    await waitForLog(container, /^spawned$/m);
    await sleep(1000);
    expect(await zombies(container)).toBeGreaterThan(250);
  });
});

describe('a read-only root file system', () => {
  async function addonPath(options: readonly string[]): Promise<string> {
    const container = removed(
      await runDetached(
        uniqueName('read-only'),
        ['--read-only', '-e', 'DRAIN_INIT_LOG_LEVEL=debug', '-v', `${FIXTURES}:/fixtures:ro`, ...options],
        ['sh', '/fixtures/orphans.sh', '50'],
      ),
    );
    await waitForLog(container, /^spawned$/m);
    await sleep(1000);
    expect(await zombies(container)).toBe(0);
    const loaded = (await drainInitLog(container)).find((line) => line.msg === 'native addon loaded');
    expect(loaded, await logs(container)).toBeDefined();
    return String(loaded?.path);
  }

  it('docker run --read-only: the addon is loaded from the memory file its launcher made', async () => {
    expect(await addonPath([])).toMatch(/^\/proc\/self\/fd\/\d+$/);
  });

  it('docker run --read-only --user nobody: the same', async () => {
    expect(await addonPath(['--user', '65534:65534'])).toMatch(/^\/proc\/self\/fd\/\d+$/);
  });
});

describe('docker run --memory: a job that overruns the limit', () => {
  const bed = sidekiqTestBed();
  // No swap (--memory-swap equal): at the limit the kernel's OOM killer ends the largest process in the
  // container's cgroup, the worker. drain-init keeps Docker's default capabilities (no SYS_RESOURCE), so
  // its oom_score_adj stays 0: its small size is what spares it.
  const LIMIT = '256m';
  // 2 s for Sidekiq's 1 s heartbeat to show the job, then 1 GiB at 256 MiB/s: the limit is overrun within
  // a second. In the moment between the worker's kill and the freeing of its memory the kernel may
  // OOM-kill drain-init too, if it needs a page then: often with a slow creep to the limit (32 MiB/s),
  // and in 2 runs of 5 at this pace while drain-init relays the worker's Redis connections.
  const ALLOC_ARGS = [1024, 4, 'oom', 2];
  /** docker run options: the memory limit with no swap, the marker directory and the environment. */
  const limited = (markerDir: string, env: Record<string, string>): string[] => [
    ...['--memory', LIMIT, '--memory-swap', LIMIT, '-v', `${markerDir}:${markerDir}`],
    ...Object.entries(env).flatMap(([name, value]) => ['-e', `${name}=${value}`]),
  ];

  it('the kernel OOM-kills the worker; drain-init logs "worker OOM-killed", puts the job back and exits 137, or, killed too, leaves it to its restart', async () => {
    const markerDir = bed.markerDir();
    const job = await enqueue(bed.redis(), { jobClass: 'AllocJob', args: ALLOC_ARGS });
    const env = {
      ...sidekiqEnv({ redisUrl: bed.redis().url, markerDir, logLevel: 'warn' }),
      SIDEKIQ_BEAT_SECONDS: '1',
      DRAIN_INIT_INSTANCE_ID: 'oom',
    };
    const container = removed(
      await runDetached(
        uniqueName('oom'),
        limited(markerDir, env),
        sidekiqCommand({ app: '/app/app.rb', concurrency: 1 }),
      ),
    );

    expect(Number(await docker('wait', container))).toBe(137);
    // Docker saw an OOM kill in the container's cgroup.
    expect(await docker('inspect', '-f', '{{.State.OOMKilled}}', container)).toBe('true');
    expect(markers(markerDir)).toMatchObject({ started: [job.jid], done: [] });
    const log = await drainInitLog(container);
    // drain-init wrote its last line after the kill: it survived and exited with the worker's status.
    if (log.at(-1)?.msg === 'child killed by signal') {
      expectOomKillRecovered(log, 'oom');
      expect(await jobsInQueue(bed.redis())).toEqual([job.payload]);
      return;
    }
    // The kernel took drain-init too, as the only candidate left while the worker's memory was being freed
    // (README, "Why the worker died"): the job waits in the record, and the container's restart recovers it.
    console.info('drain-init was OOM-killed after its worker: checking that its restart recovers the job');
    expect(await jobsInQueue(bed.redis())).toEqual([]);
    expect(await bed.redis().call('HEXISTS', 'drain-init:jobs:oom', job.jid)).toBe(1);
    await docker('start', container);
    await waitForAsync(
      async () => (await drainInitLog(container)).some((line) => line.msg === 'recovered the jobs of a dead worker'),
      'the recovery at the restart',
    );
    expect(
      (await drainInitLog(container)).find((line) => line.msg === 'recovered the jobs of a dead worker'),
    ).toMatchObject({
      instanceId: 'oom',
      requeued: 1,
    });
  });

  it('a job that OOM-kills its worker each time, --restart always, 10 jobs beside it: the Dead set after 3 kills, the 10 others done', async () => {
    const markerDir = bed.markerDir();
    const killer = await enqueue(bed.redis(), { jobClass: 'AllocJob', args: ALLOC_ARGS });
    const others: EnqueuedJob[] = [];
    for (let index = 0; index < 10; index++)
      others.push(await enqueue(bed.redis(), { args: [0.3, `beside-${index}`] }));
    const env = {
      ...sidekiqEnv({ redisUrl: bed.redis().url, markerDir, logLevel: 'warn' }),
      DRAIN_INIT_INSTANCE_ID: 'oom-poison',
      DRAIN_INIT_RESTART: 'always',
      DRAIN_INIT_RESTART_DELAY: '500ms',
      DRAIN_INIT_GRACE_PERIOD: '10s',
    };
    const container = removed(
      await runDetached(
        uniqueName('oom-poison'),
        // Should the kernel take drain-init too (see above), Docker starts the container again.
        ['--restart', 'on-failure', ...limited(markerDir, env)],
        sidekiqCommand({ app: '/app/app.rb', concurrency: 3 }),
      ),
    );

    await waitForAsync(async () => Number(await bed.redis().call('ZCARD', 'dead')) > 0, 'the Dead set', 120_000);
    const dead = (await bed.redis().call('ZRANGE', 'dead', 0, -1)) as string[];
    expect(dead).toHaveLength(1);
    expect(JSON.parse(dead[0] ?? '{}')).toMatchObject({
      jid: killer.jid,
      class: 'AllocJob',
      error_class: 'DrainInit::WorkerDied',
      // The last death is the worker's OOM kill, or the kernel's taking drain-init too (see above).
      error_message: expect.stringMatching(/died 3 times in 72 h \(last: (OOM-killed|drain-init was killed with it)\)/),
    });
    for (const job of others) await waitForMarker(markerDir, job.jid, 'done', 60_000);
    expect(markerRuns(markerDir, 'started').get(killer.jid)).toHaveLength(3);
    expect((await jobsInQueue(bed.redis())).includes(killer.payload)).toBe(false);

    await docker('stop', '-t', '10', container);
    const log = await drainInitLog(container);
    expect(log.filter((line) => String(line.msg).startsWith('worker OOM-killed')).length).toBeGreaterThan(0);
    expect(log.find((line) => String(line.msg).startsWith("job moved to Sidekiq's Dead set"))).toMatchObject({
      jid: killer.jid,
      class: 'AllocJob',
      deaths: 3,
    });
  }, 240_000);
});

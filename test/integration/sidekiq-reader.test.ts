// The Sidekiq reader against a real redis-server: the per-version dumps and the real 6.4.1 captures
// written into it, then a real Sidekiq 6.4.1 found by hostname and pid, started directly and through sh -c.
import { hostname } from 'node:os';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { sidekiqHostname, supervisedProcesses } from '../../src/sidekiq/match.js';
import { parseSnapshot } from '../../src/sidekiq/parse.js';
import { processTree } from '../../src/process/proc.js';
import { sidekiqKeys } from '../../src/sidekiq/keys.js';
import { readSidekiq, type SidekiqSnapshot } from '../../src/sidekiq/reader.js';
import { identityHashes, capturedDump, versionDump, writeDump, type Dump } from '../fixtures/sidekiq-versions/dumps.js';
import { redisTestBed, type RedisServer } from '../helpers/redis.js';
import {
  enqueue,
  makeMarkerDir,
  removeMarkerDir,
  sidekiqCommand,
  sidekiqEnv,
  spawnSidekiq,
  waitForSidekiqBusy,
  type SidekiqRun,
} from '../helpers/sidekiq.js';

const server = redisTestBed();
let client: Redis | undefined;

const redis = (): { server: RedisServer; client: Redis } => {
  if (client === undefined) throw new Error('no Redis client');
  return { server: server(), client };
};

beforeAll(() => {
  client = new Redis(server().url, { maxRetriesPerRequest: 0 });
});
afterAll(() => {
  client?.disconnect();
});

function summary(snapshot: SidekiqSnapshot): { processes: string[]; jobs: string[] } {
  return {
    processes: snapshot.processes.map((p) => p.identity),
    jobs: snapshot.jobs.map((j) => `${j.identity} ${j.jid}`).sort(),
  };
}

/** What the pure parser makes of the dump itself: the reader must see exactly this through Redis. */
function expected(dump: Dump): SidekiqSnapshot {
  return parseSnapshot(identityHashes(dump));
}

describe('reading dumps written into Redis', () => {
  it.each([
    ['sidekiq-5.2.10', 3, 4],
    ['sidekiq-6.5.12', 3, 4],
    ['sidekiq-7.3.9', 3, 4],
    ['sidekiq-8.0.7', 3, 4],
    ['sidekiq-8.1.7', 5, 5],
  ])('%s: %i processes and %i jobs, the same as the dump says', async (name, processCount, jobCount) => {
    const dump = versionDump(name);
    await writeDump(redis().server, dump);
    const snapshot = await readSidekiq(redis().client, { hostname: 'worker-7f9c' });
    expect(snapshot.warnings).toEqual([]);
    expect(snapshot.processes).toHaveLength(processCount);
    expect(snapshot.jobs).toHaveLength(jobCount);
    expect(summary(snapshot)).toEqual(summary(expected(dump)));
    expect(snapshot.jobs.map((j) => j.payload).sort()).toEqual(
      expected(dump)
        .jobs.map((j) => j.payload)
        .sort(),
    );
  });

  it.each([
    'run1-01-running',
    'run2-02-just-after-sigkill',
    'run2-03-restarted-ghost-visible',
    'run2-04-after-ghost-ttl-expiry',
  ])('real 6.4.1 capture %s', async (name) => {
    const dump = capturedDump(name);
    await writeDump(redis().server, dump);
    const snapshot = await readSidekiq(redis().client);
    expect(snapshot.warnings).toEqual([]);
    expect(summary(snapshot)).toEqual(summary(expected(dump)));
  });

  it("finds the live worker beside the SIGKILLed ghost, and the ghost's lost jobs", async () => {
    await writeDump(redis().server, capturedDump('run2-03-restarted-ghost-visible'));
    const snapshot = await readSidekiq(redis().client);
    const matched = supervisedProcesses(snapshot.processes, {
      hostname: 'vm',
      pids: new Set([1, 30630]),
      nowEpochS: 1795325773.5597389,
      childStartedEpochS: 0,
    });
    expect(matched.map((p) => p.identity)).toEqual(['vm:30630:9ef0d99c2bdc']);
    expect(snapshot.jobs.map((j) => `${j.identity} ${j.class} ${j.queue}`)).toEqual([
      'vm:30550:3ada88292ce4 SleepJob default',
      'vm:30550:3ada88292ce4 SleepJob default',
    ]);
  });

  it('reads under a namespace only the namespaced keys', async () => {
    await writeDump(redis().server, versionDump('sidekiq-5.2.10'), 'myapp:');
    await writeDump(redis().server, versionDump('sidekiq-8.1.7'));
    const namespaced = await readSidekiq(redis().client, { keys: sidekiqKeys('myapp') });
    expect(namespaced.warnings).toEqual([]);
    expect(summary(namespaced)).toEqual(summary(expected(versionDump('sidekiq-5.2.10'))));
    expect(summary(await readSidekiq(redis().client))).toEqual(summary(expected(versionDump('sidekiq-8.1.7'))));
  });

  it('skips a key of the wrong type with a warning and reads the rest', async () => {
    await writeDump(redis().server, versionDump('sidekiq-7.3.9'));
    await redis().server.pipeline([
      ['SADD', 'processes', 'worker-7f9c:9:000000000000'],
      ['SET', 'worker-7f9c:9:000000000000', 'not a hash'],
    ]);
    const snapshot = await readSidekiq(redis().client);
    expect(snapshot.warnings).toEqual(['Sidekiq key "worker-7f9c:9:000000000000" skipped: it is a string, not a hash']);
    expect(summary(snapshot)).toEqual(summary(expected(versionDump('sidekiq-7.3.9'))));
  });

  it('reads no value over 1 MB and no more than 1,000 fields of a hash, naming the key in a warning', async () => {
    await writeDump(redis().server, versionDump('sidekiq-7.3.9'));
    const id = 'worker-7f9c:9:000000000000';
    const huge = JSON.stringify({ queue: 'default', payload: 'x'.repeat(10 * 1_048_576), run_at: 1 });
    const junk = Array.from({ length: 1_500 }, (_, i) => [`t${i}`, 'junk']).flat();
    await redis().server.pipeline([
      ['SADD', 'processes', id],
      ['HSET', `${id}:work`, 'big', huge],
      ['HSET', `${id}:workers`, ...junk],
    ]);
    const snapshot = await readSidekiq(redis().client, { hostname: 'worker-7f9c' });
    expect(snapshot.warnings.filter((warning) => !warning.includes('on thread "t'))).toEqual([
      `Sidekiq key "${id}:work" field "big" skipped: its value is ${huge.length} bytes, over the 1048576-byte cap`,
      `Sidekiq key "${id}:workers" has 1500 fields: read only 1000`,
    ]);
    // The 1,000 junk fields read are each a broken job; the big one was never read.
    expect(snapshot.warnings).toHaveLength(1_002);
    expect(snapshot.jobs.some((job) => job.identity === id)).toBe(false);
  });

  it('lists at most 100,000 members of a huge processes set, in SSCAN steps, with a warning naming it', async () => {
    await writeDump(redis().server, versionDump('sidekiq-8.1.7'));
    const strangers = Array.from({ length: 120_000 }, (_, i) => `zzz-${i}:1:000000000000`);
    await redis().server.call('SADD', 'processes', ...strangers);
    const snapshot = await readSidekiq(redis().client, { hostname: 'worker-7f9c', onlyHostname: true });
    expect(snapshot.warnings).toEqual([
      expect.stringMatching(
        /^Sidekiq key "processes" is too large to list whole: 100000 members looked at, \d+ taken$/,
      ),
    ]);
  });

  it("reads this host's identities first when there are more members than the cap", async () => {
    await writeDump(redis().server, versionDump('sidekiq-8.1.7'));
    const strangers = Array.from({ length: 600 }, (_, i) => `aaa-${String(i).padStart(3, '0')}:1:000000000000`);
    await redis().server.call('SADD', 'processes', ...strangers);
    const snapshot = await readSidekiq(redis().client, { hostname: 'worker-7f9c' });
    expect(snapshot.warnings).toEqual(["Sidekiq processes has 606 members: read only 500, this host's first"]);
    expect(snapshot.processes.map((p) => p.identity)).toEqual(
      expected(versionDump('sidekiq-8.1.7'))
        .processes.map((p) => p.identity)
        .filter((id) => id.startsWith('worker-7f9c:')),
    );
  });
});

describe('a real Sidekiq 6.4.1 found by hostname and pid', () => {
  let markerDir = '';
  let run: SidekiqRun | undefined;
  /** Processes below the spawned root (Sidekiq under sh -c): SIGKILLing the root alone would orphan them. */
  let below: number[] = [];

  beforeEach(() => {
    markerDir = makeMarkerDir();
  });
  afterEach(async () => {
    // Below first, so that sh reaps them and exits on its own, leaving no zombie to the system's init.
    const orphans = below.splice(0);
    for (const pid of orphans) killQuietly(pid);
    if (run !== undefined && orphans.length > 0)
      await Promise.race([run.exited, new Promise((resolve) => setTimeout(resolve, 2_000))]);
    await run?.kill();
    run = undefined;
    removeMarkerDir(markerDir);
  });

  const quote = (word: string): string => `'${word.replaceAll("'", `'\\''`)}'`;

  it.each([
    ['directly', (argv: string[]) => argv, true],
    ['through sh -c', (argv: string[]) => ['sh', '-c', `${argv.map(quote).join(' ')} & wait`], false],
  ])(
    'started %s',
    async (_how, wrap, workerIsRoot) => {
      const job = await enqueue(redis().server, { args: [30, 'long'] });
      run = spawnSidekiq(
        wrap(sidekiqCommand({ concurrency: 1 })),
        sidekiqEnv({ redisUrl: redis().server.url, markerDir }),
      );
      await waitForSidekiqBusy(redis().server, 1, { timeoutMs: 30_000 });

      const pids = processTree(run.pid);
      below = [...pids].filter((pid) => pid !== run?.pid);
      const snapshot = await readSidekiq(redis().client, { hostname: hostname() });
      const matched = supervisedProcesses(snapshot.processes, {
        hostname: sidekiqHostname(process.env, hostname()),
        pids,
        nowEpochS: Date.now() / 1000,
        childStartedEpochS: 0,
      });

      expect(snapshot.warnings).toEqual([]);
      expect(matched).toHaveLength(1);
      const [worker] = matched;
      expect(worker).toMatchObject({ hostname: hostname(), busy: 1, quiet: false, concurrency: 1 });
      expect(pids.has(worker?.pid ?? -1)).toBe(true);
      expect(worker?.pid === run.pid).toBe(workerIsRoot);
      expect(worker?.identity).toMatch(new RegExp(`^${hostname()}:${worker?.pid}:[0-9a-f]{12}$`));
      expect(snapshot.jobs.filter((j) => j.identity === worker?.identity).map((j) => [j.jid, j.payload])).toEqual([
        [job.jid, job.payload],
      ]);
      // Same host, fresh beat, but a tree without its pid: not ours.
      expect(
        supervisedProcesses(snapshot.processes, {
          hostname: hostname(),
          pids: new Set([process.pid]),
          nowEpochS: Date.now() / 1000,
          childStartedEpochS: 0,
        }),
      ).toEqual([]);
    },
    60_000,
  );
});

function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

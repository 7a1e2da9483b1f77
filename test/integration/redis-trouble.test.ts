// Hostile Redis states as an operator meets them, against real redis-servers, with drain-init as PID 1: the
// worker always runs, each state is one log line with its real reason (and one when it ends), and /status
// and /metrics say the truth.
import { existsSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseExposition } from '../helpers/exposition.js';
import {
  eventually,
  FIXTURES,
  killedAfterEach,
  logLines,
  startDrainInit,
  tempPath,
  waitFor,
  type Run,
} from '../helpers/pid1.js';
import { probeRequest, probeStatus, startWithProbe } from '../helpers/probe.js';
import { startRedis, type RedisServer } from '../helpers/redis.js';

const RECORDER = `${FIXTURES}recorder.py`;
const track = killedAfterEach();
let primary: RedisServer;
let other: RedisServer;

beforeAll(async () => {
  [primary, other] = await Promise.all([startRedis(), startRedis()]);
});
afterAll(async () => {
  await Promise.all([primary.stop(), other.stop()]);
});

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

interface Started {
  readonly run: Run;
  readonly port: number;
}

/** drain-init as PID 1 with a Sidekiq-like worker (the recorder), its probe on a free port, once the worker runs. */
async function start(url: string, prefix: string, extra: readonly string[] = [], env: Record<string, string> = {}) {
  const file = tempPath('signals');
  const args = ['--preset', 'sidekiq', '--grace-period', '60s', '--redis-prefix', prefix, '--instance-id', 'trouble'];
  const started = await startWithProbe([...args, '--heartbeat-interval', '500ms', ...extra, '--', RECORDER, file], {
    env: { DRAIN_INIT_REDIS_URL: url, DYNO: `trouble-${prefix}`, ...env },
  });
  track(started.run);
  await waitFor(() => existsSync(file) && readFileSync(file, 'utf8').includes('READY'), 'the worker');
  return started;
}

/** Warning lines (level 40 and up); the notice that a worker without REDIS_URL gets no endpoint is left out. */
function warnings(run: Run): Record<string, unknown>[] {
  return logLines(run.stderr()).filter(
    (line) => Number(line.level) >= 40 && !String(line.msg).startsWith('no Redis endpoint for the worker'),
  );
}

/** Waits for a line whose message starts so: the log reaches the test a moment after /status has changed. */
function logged(run: Run, start: string): Promise<string> {
  return waitFor(() => messages(run).find((msg) => msg.startsWith(start)), `the line "${start}"`);
}

function messages(run: Run): string[] {
  return logLines(run.stderr()).map((line) => String(line.msg));
}

interface RedisPart {
  readonly state: string;
  readonly reason: string | null;
  readonly brokenKeys: string[];
}

async function redisStatus(port: number): Promise<RedisPart> {
  return (await probeStatus(port)).redis as RedisPart;
}

async function metrics(port: number): Promise<Map<string, number>> {
  const families = parseExposition((await probeRequest(port, '/metrics')).body);
  const values = new Map<string, number>();
  for (const family of families.values())
    for (const sample of family.samples)
      values.set(
        sample.labels.state === undefined ? family.name : `${family.name}{${sample.labels.state}}`,
        sample.value,
      );
  return values;
}

/** The worker runs: drain-init has a child and is not stopping. */
async function expectWorkerRunning(started: Started): Promise<void> {
  const status = await probeStatus(started.port);
  expect(status).toMatchObject({ state: 'running' });
  expect(status.childPid).toEqual(expect.any(Number));
  expect(started.run.process.exitCode).toBeNull();
}

/** Polls /status until its redis part is accepted. */
function redisBecomes(port: number, accept: (redis: RedisPart) => boolean, what: string, timeoutMs = 15_000) {
  return eventually(
    async () => {
      const redis = await redisStatus(port);
      return accept(redis) ? redis : undefined;
    },
    what,
    timeoutMs,
    100,
  );
}

/** Commands on a server that asks for a password (the helper sends none of its own). */
function withPassword(server: RedisServer, password: string, ...command: string[]): Promise<unknown> {
  return server.pipeline([['AUTH', password], command]);
}

describe("the worker's own Redis URL", () => {
  it('never keeps the worker from starting: a URL drain-init cannot use turns its Redis off with one warning', async () => {
    const file = tempPath('signals');
    const run = track(
      startDrainInit(['--', RECORDER, file], { env: { REDIS_URL: 'redis://:hunter2@127.0.0.1:6379/abc\u001b[2J' } }),
    );
    await waitFor(() => existsSync(file) && readFileSync(file, 'utf8').includes('READY'), 'the worker');
    await sleep(500);
    const lines = warnings(run);
    expect(lines).toHaveLength(1);
    expect(String(lines[0]?.msg)).toMatch(
      /^invalid value 'redis:\/\/\*\*\*@127\.0\.0\.1:6379\/abc\\u001b\[2J' for REDIS_URL: .*drain-init's Redis features are off and the worker starts as usual/,
    );
    expect(run.stderr()).not.toContain('hunter2');
    expect(run.process.exitCode).toBeNull();
  });

  it('reads a unix:// socket with its database, as Sidekiq does', async () => {
    const socket = tempPath('redis.sock');
    const server = await startRedis({ extraArgs: ['--unixsocket', socket, '--unixsocketperm', '700'] });
    try {
      const file = tempPath('signals');
      const run = track(
        startDrainInit(['--instance-id', 'on-socket', '--heartbeat-interval', '500ms', '--', RECORDER, file], {
          env: { REDIS_URL: `unix://${socket}?db=3` },
        }),
      );
      await waitFor(() => existsSync(file) && readFileSync(file, 'utf8').includes('READY'), 'the worker');
      const state = await eventually(async () => {
        const [, fields] = await server.pipeline([
          ['SELECT', 3],
          ['HGET', 'drain-init:instance:on-socket', 'state'],
        ]);
        return fields === 'running' ? fields : undefined;
      }, 'the record in database 3');
      expect(state).toBe('running');
      expect(await server.call('EXISTS', 'drain-init:instance:on-socket')).toBe(0);
      expect(warnings(run)).toEqual([]);
    } finally {
      await server.stop();
    }
  });
});

describe('Redis states, each one line with its real reason', () => {
  it('a read-only replica: refusing from the start, writes backed off, no flapping; promoted, it is up once', async () => {
    const replica = await startRedis({ extraArgs: ['--replicaof', '127.0.0.1', String(primary.port)] });
    try {
      const started = await start(replica.url, 'replica');
      await redisBecomes(started.port, (redis) => redis.state === 'refusing', 'refusing');
      await sleep(6_000);
      await expectWorkerRunning(started);
      expect(await redisStatus(started.port)).toEqual({
        state: 'refusing',
        reason: expect.stringMatching(/^READONLY /) as string,
        brokenKeys: [],
      });
      const figures = await metrics(started.port);
      expect(figures.get('drain_init_redis_up')).toBe(0);
      expect(figures.get('drain_init_redis_state{refusing}')).toBe(1);
      expect(figures.get('drain_init_redis_state{up}')).toBe(0);
      expect(warnings(started.run).map((line) => line.msg)).toEqual([
        'Redis refuses commands: its writes are tried again at most every 30 s; the worker runs on',
      ]);
      expect(messages(started.run).filter((msg) => msg.includes('available again'))).toEqual([]);

      await replica.call('REPLICAOF', 'NO', 'ONE');
      await redisBecomes(started.port, (redis) => redis.state === 'up', 'up after the promotion', 40_000);
      expect((await metrics(started.port)).get('drain_init_redis_up')).toBe(1);
      await eventually(
        async () =>
          (await replica.call('HGET', 'replica:instance:trouble', 'state')) === 'running' ? true : undefined,
        'the record written on the promoted server',
      );
      await logged(started.run, 'Redis available again');
      expect(messages(started.run).filter((msg) => msg.startsWith('Redis available again'))).toHaveLength(1);
      expect(warnings(started.run)).toHaveLength(1);
      await expectWorkerRunning(started);
    } finally {
      await replica.stop();
    }
  }, 90_000);

  it('a primary demoted mid-run: one line for the refusal, none per write, and one when it is primary again', async () => {
    const demoted = await startRedis();
    try {
      const started = await start(demoted.url, 'demoted');
      await redisBecomes(started.port, (redis) => redis.state === 'up', 'up');
      await eventually(
        async () =>
          (await demoted.call('HGET', 'demoted:instance:trouble', 'state')) === 'running' ? true : undefined,
        'the record',
      );
      await demoted.call('REPLICAOF', '127.0.0.1', String(other.port));
      await redisBecomes(started.port, (redis) => redis.state === 'refusing', 'refusing after the demotion');
      await sleep(6_000);
      await expectWorkerRunning(started);
      expect(await redisStatus(started.port)).toMatchObject({
        state: 'refusing',
        reason: expect.stringMatching(/^READONLY /),
      });
      expect((await metrics(started.port)).get('drain_init_redis_up')).toBe(0);
      const lines = warnings(started.run).map((line) => line.msg);
      // The demotion may close drain-init's connection first: that is its own line, once.
      expect(lines.filter((msg) => msg !== 'Redis unavailable; the worker runs on')).toEqual([
        'Redis refuses commands: its writes are tried again at most every 30 s; the worker runs on',
      ]);
      expect(lines.length).toBeLessThanOrEqual(2);

      await demoted.call('REPLICAOF', 'NO', 'ONE');
      await redisBecomes(started.port, (redis) => redis.state === 'up', 'up again', 40_000);
      await logged(started.run, 'Redis available again');
      expect(messages(started.run).filter((msg) => msg.startsWith('Redis available again'))).toHaveLength(1);
      await expectWorkerRunning(started);
    } finally {
      await demoted.stop();
    }
  }, 90_000);

  it('a password set mid-run with the clients killed: logged as what the client sees, once, and the end once', async () => {
    const locked = await startRedis();
    try {
      const started = await start(locked.url, 'password');
      await redisBecomes(started.port, (redis) => redis.state === 'up', 'up');
      await locked.pipeline([
        ['CONFIG', 'SET', 'requirepass', 'n3w-s3cret'],
        ['CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes'],
      ]);
      const during = await redisBecomes(started.port, (redis) => redis.state !== 'up', 'the outage');
      await sleep(5_000);
      await expectWorkerRunning(started);
      expect(['down', 'refusing']).toContain(during.state);
      expect((await redisStatus(started.port)).reason).toMatch(/closed|NOAUTH/);
      expect((await metrics(started.port)).get('drain_init_redis_up')).toBe(0);
      const lines = warnings(started.run);
      expect(lines[0]).toMatchObject({ msg: 'Redis unavailable; the worker runs on', reason: 'connection closed' });
      // Reconnecting, the client meets NOAUTH: a refusal, logged once if at all.
      expect(lines.slice(1).map((line) => line.msg)).toEqual(
        lines.length === 1
          ? []
          : ['Redis refuses commands: its writes are tried again at most every 30 s; the worker runs on'],
      );
      expect(JSON.stringify(lines)).not.toContain('n3w-s3cret');

      await withPassword(locked, 'n3w-s3cret', 'CONFIG', 'SET', 'requirepass', '');
      await redisBecomes(started.port, (redis) => redis.state === 'up', 'up again', 40_000);
      await logged(started.run, 'Redis available again');
      expect(messages(started.run).filter((msg) => msg.startsWith('Redis available again'))).toHaveLength(1);
      await expectWorkerRunning(started);
    } finally {
      await locked.stop();
    }
  }, 90_000);
});

/** A job string as Sidekiq writes it. */
function jobString(jid: string, extra = ''): string {
  return `{"retry":true,"queue":"default","args":[1${extra}],"class":"SleepJob","jid":"${jid}","created_at":1795325608.1}`;
}

describe('a key of another type', () => {
  interface Case {
    readonly name: string;
    readonly prefix: string;
    readonly key: string;
    readonly setup: (string | number)[][];
    readonly extra?: readonly string[];
  }
  const record = (prefix: string, jid: string): string[] => [
    'HSET',
    `${prefix}:jobs:trouble`,
    jid,
    JSON.stringify({ queue: 'default', payload: jobString(jid), process: 'gone-host:1' }),
  ];
  const cases: Case[] = [
    { name: 'the registry of instances', prefix: 'wt1', key: 'wt1:instances', setup: [['SET', 'wt1:instances', 'x']] },
    { name: 'the fleet stops', prefix: 'wt2', key: 'wt2:stops', setup: [['SET', 'wt2:stops', 'x']] },
    { name: 'the stops cut count', prefix: 'wt3', key: 'wt3:stops-cut', setup: [['HSET', 'wt3:stops-cut', 'f', 'v']] },
    {
      name: 'the recovery lock',
      prefix: 'wt4',
      key: 'wt4:recovery-lock:trouble',
      setup: [['HSET', 'wt4:recovery-lock:trouble', 'f', 'v']],
    },
    { name: 'the job record', prefix: 'wt5', key: 'wt5:jobs:trouble', setup: [['SET', 'wt5:jobs:trouble', 'x']] },
    {
      name: 'the index of job records',
      prefix: 'wt6',
      key: 'wt6:job-records',
      setup: [['SET', 'wt6:job-records', 'x']],
    },
    {
      name: 'the job deaths',
      prefix: 'wt7',
      key: 'wt7:job-deaths',
      setup: [['SET', 'wt7:job-deaths', 'x'], record('wt7', 'victim-7')],
      extra: ['--sidekiq-namespace', 'wt7'],
    },
    {
      name: "Sidekiq's processes",
      prefix: 'wt8',
      key: 'wt8:processes',
      setup: [['SET', 'wt8:processes', 'x']],
      extra: ['--sidekiq-namespace', 'wt8'],
    },
  ];

  it.each(cases)(
    '$name: named once, Redis up, the rest working, and usable again once mended',
    async ({ prefix, key, setup, extra }) => {
      await primary.pipeline(setup);
      const started = await start(primary.url, prefix, extra);
      const broken = await redisBecomes(
        started.port,
        (redis) => {
          // The fleet's stops are used at each /metrics.
          void probeRequest(started.port, '/metrics').catch(() => undefined);
          return redis.brokenKeys.length > 0;
        },
        `${key} named`,
      );
      await sleep(2_000);
      expect(await redisStatus(started.port)).toEqual({ ...broken, state: 'up', reason: null, brokenKeys: [key] });
      const figures = await metrics(started.port);
      expect(figures.get('drain_init_redis_broken_keys')).toBe(1);
      expect(figures.get('drain_init_redis_up')).toBe(1);
      expect(figures.get('drain_init_redis_state{up}')).toBe(1);
      const lines = warnings(started.run);
      expect(lines.map((line) => line.msg)).toEqual([expect.stringContaining(`Redis key ${key} is a `)]);
      expect(lines[0]).toMatchObject({ key });
      // The rest works: the instance's record is written (but with the registry broken, whose script it shares).
      if (key !== `${prefix}:instances`)
        expect(await primary.call('HGET', `${prefix}:instance:trouble`, 'state')).toBe('running');
      await expectWorkerRunning(started);

      await primary.call('DEL', key);
      await redisBecomes(
        started.port,
        (redis) => {
          void probeRequest(started.port, '/metrics').catch(() => undefined);
          return redis.brokenKeys.length === 0;
        },
        `${key} usable again`,
        40_000,
      );
      await logged(started.run, `Redis key ${key} is usable again`);
      expect((await metrics(started.port)).get('drain_init_redis_broken_keys')).toBe(0);
      expect(warnings(started.run)).toHaveLength(1);
      await expectWorkerRunning(started);
    },
    60_000,
  );

  it("the instance's own record: another id is claimed, the key named in one warning", async () => {
    await primary.call('SET', 'wt9:instance:trouble', 'x');
    const started = await start(primary.url, 'wt9');
    await eventually(
      async () => ((await primary.call('HGET', 'wt9:instance:trouble-2', 'state')) === 'running' ? true : undefined),
      'the record under trouble-2',
    );
    expect(warnings(started.run).map((line) => line.msg)).toEqual([
      "the key wt9:instance:trouble has another type than drain-init's record: this one tries 'trouble-2'",
    ]);
    expect(await redisStatus(started.port)).toMatchObject({ state: 'up', brokenKeys: [] });
    await expectWorkerRunning(started);
  });
});

/** drain-init's resident memory, KB (the init of the PID namespace, seen from the host). */
async function rssKb(run: Run): Promise<number> {
  const status = readFileSync(`/proc/${await run.pid()}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1]);
}

describe('hostile contents', () => {
  it("a dead peer's record of 5,000 junk entries: one line with the count, the record and its index entry gone", async () => {
    const junk = Array.from({ length: 5_000 }, (_, index) => [`junk-${index}`, `{"not":"a job ${index}"`]).flat();
    await primary.pipeline([
      ['HSET', 'junk:jobs:peer', ...junk],
      ['HSET', 'junk:job-records', 'peer', 'dead-token'],
    ]);
    const started = await start(primary.url, 'junk');
    await eventually(
      async () => ((await primary.call('EXISTS', 'junk:jobs:peer')) === 0 ? true : undefined),
      'the junk record dropped',
      20_000,
    );
    await logged(started.run, 'malformed job record entries dropped');
    await sleep(1_000);
    const lines = warnings(started.run);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      instanceId: 'peer',
      count: 5_000,
      byReason: { 'not a JSON object': 5_000 },
      jids: expect.any(Array) as unknown[],
    });
    expect(await primary.call('HEXISTS', 'junk:job-records', 'peer')).toBe(0);
    await expectWorkerRunning(started);
  }, 60_000);

  it('10 MB values: a fake job is never requeued nor read whole; a work hash value is named once, never read', async () => {
    const host = 'trouble-big';
    const identity = `${host}:4242:abcdef012345`;
    const filler = `,"${'x'.repeat(10 * 1_048_576)}"`;
    const fake = JSON.stringify({ queue: 'default', payload: jobString('fake-big', filler), process: 'gone-host:1' });
    const work = JSON.stringify({ queue: 'default', payload: jobString('w', filler), run_at: 1 });
    await primary.pipeline([
      ['HSET', 'big:jobs:peer', 'fake-big', fake],
      ['HSET', 'big:job-records', 'peer', 'dead-token'],
      ['SADD', 'big:processes', identity],
      [
        'HSET',
        `big:${identity}`,
        'info',
        JSON.stringify({ hostname: host, pid: 4242, tag: '', concurrency: 1, queues: ['default'] }),
        'busy',
        '1',
        'beat',
        String(Date.now() / 1000),
        'quiet',
        'false',
      ],
      ['HSET', `big:${identity}:work`, 'tid', work],
    ]);
    const started = await start(primary.url, 'big', ['--sidekiq-namespace', 'big']);
    await logged(started.run, 'malformed job record entries dropped');
    const rssAtStart = await rssKb(started.run);
    // The watcher reads this host's processes every 250 ms until the worker registers: some 40 reads.
    await sleep(10_000);
    const rssAfter = await rssKb(started.run);
    expect(await primary.call('LLEN', 'big:queue:default')).toBe(0);
    const lines = warnings(started.run);
    // In either order: the watcher's first read and the peer's recovery run side by side.
    expect(lines.map((line) => line.msg).sort()).toEqual([
      `Sidekiq key "big:${identity}:work" field "tid" skipped: its value is ${work.length} bytes, over the 1048576-byte cap`,
      'malformed job record entries dropped: they are no Sidekiq job to put back',
    ]);
    expect(lines.find((line) => line.count !== undefined)).toMatchObject({
      count: 1,
      byReason: { 'longer than 1048576 bytes': 1 },
    });
    // Forty whole reads of a 10 MB value would cost some 30 to 45 MB; none was made.
    expect(rssAfter - rssAtStart).toBeLessThan(15_000);
    await expectWorkerRunning(started);
  }, 60_000);
});

// Job recovery against a real redis-server: the mirror, the requeue script's cases, the lock raced by
// two instances, dead peers, Sidekiq Pro, and a redis-server killed in the middle of the script.
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { recoveryKeys } from '../../src/recovery/keys.js';
import { acquireLock, releaseLock } from '../../src/recovery/lock.js';
import { JobMirror } from '../../src/recovery/mirror.js';
import {
  findDeadPeers,
  recoverDeadPeers,
  recoverRecord,
  releaseHeldJob,
  type RecoveryResult,
  type RecoverySettings,
} from '../../src/recovery/recover.js';
import {
  countOutcomes,
  MAX_JOB_BYTES,
  requeueRecord,
  type JobResult,
  type RequeueRequest,
} from '../../src/recovery/requeue.js';
import { systemClock } from '../../src/lib/clock.js';
import { connectRedis, type RedisConnection } from '../../src/redis/connection.js';
import { parseRedisUrl } from '../../src/redis/url.js';
import { SIDEKIQ_KEYS, sidekiqKeys } from '../../src/sidekiq/keys.js';
import { readSidekiq } from '../../src/sidekiq/reader.js';
import type { InFlightJob } from '../../src/sidekiq/parse.js';
import { capturedDump, writeDump } from '../fixtures/sidekiq-versions/dumps.js';
import { captureLogger } from '../helpers/fake.js';
import { waitFor } from '../helpers/pid1.js';
import { redisTestBed, startRedis, type RedisServer } from '../helpers/redis.js';

const PREFIX = 'drain-init';
/** Poison jobs off, unless a test says otherwise. */
const NO_POISON = { maxDeaths: 0, windowMs: 72 * 3_600_000 };
const SETTINGS: RecoverySettings = { prefix: PREFIX, sidekiq: SIDEKIQ_KEYS, poison: NO_POISON, clock: systemClock };
const DEAD = 'pod-dead';
const OWN = 'pod-own';
/** The dead worker's Sidekiq identity. */
const GHOST = 'pod-dead:1:0123456789ab';

const redis = redisTestBed();
const connections: RedisConnection[] = [];

async function connect(url = redis().url): Promise<RedisConnection> {
  const connection = connectRedis(parseRedisUrl(url), captureLogger().log, 'test', systemClock);
  connections.push(connection);
  await waitFor(() => (connection.client.status === 'ready' ? true : undefined), 'a connection to Redis');
  return connection;
}

afterEach(() => {
  for (const connection of connections.splice(0)) connection.close();
});

/** A job string as Sidekiq 6.4.1's client writes it: Ruby floats keep their ".0", which JSON.stringify would drop. */
function jobString(jid: string, queue = 'default'): string {
  return `{"retry":true,"queue":"${queue}","args":[600.0,"${jid}"],"class":"SleepJob","jid":"${jid}","created_at":1795325608.1060772,"enqueued_at":1795325608.1062725}`;
}

function entry(jid: string, queue = 'default', identity = GHOST): string {
  return JSON.stringify({ identity, queue, payload: jobString(jid, queue) });
}

/** The job record of `instanceId` holding these entries (jid to value), listed in the index as the mirror leaves it. */
async function writeRecord(instanceId: string, entries: Record<string, string>): Promise<void> {
  const keys = recoveryKeys(PREFIX, instanceId);
  await redis().pipeline([
    ['HSET', keys.jobs, ...Object.entries(entries).flat()],
    ['HSET', keys.index, instanceId, `token-of-${instanceId}`],
  ]);
}

/** A Sidekiq process with a fresh heartbeat (or `ageS` old) running `jids`, as its heartbeat writes it. */
async function sidekiqProcess(
  identity: string,
  jids: readonly string[],
  options: { ageS?: number; namespace?: string; queues?: string[] } = {},
): Promise<void> {
  const prefix = options.namespace === undefined ? '' : `${options.namespace}:`;
  const [hostname = '', pid = '0'] = identity.split(':');
  const info = JSON.stringify({
    hostname,
    started_at: 1,
    pid: Number(pid),
    tag: '',
    concurrency: 5,
    queues: options.queues ?? ['default'],
    labels: [],
    identity,
  });
  const beat = Date.now() / 1000 - (options.ageS ?? 0);
  const work = jids.flatMap((jid, index) => [
    `t${index}`,
    JSON.stringify({ queue: 'default', payload: jobString(jid), run_at: Math.floor(beat) }),
  ]);
  await redis().pipeline([
    ['SADD', `${prefix}processes`, identity],
    ['HSET', `${prefix}${identity}`, 'info', info, 'busy', jids.length, 'beat', beat, 'quiet', 'false'],
    ...(work.length === 0 ? [] : [['HSET', `${prefix}${identity}:workers`, ...work]]),
  ]);
}

async function list(key: string): Promise<string[]> {
  return (await redis().call('LRANGE', key, 0, -1)) as string[];
}

async function recordOf(instanceId: string): Promise<string[]> {
  return ((await redis().call('HKEYS', recoveryKeys(PREFIX, instanceId).jobs)) as string[]).sort();
}

async function index(): Promise<string[]> {
  return ((await redis().call('HKEYS', recoveryKeys(PREFIX, OWN).index)) as string[]).sort();
}

function jobsOf(result: RecoveryResult): readonly JobResult[] {
  if (result.kind !== 'recovered') throw new Error(`expected a recovery, got ${JSON.stringify(result)}`);
  return result.jobs;
}

/** The dead instance's whole record requeued by a recovery that holds the lock with this token. */
function requeueOfDead(token: string, onlyIfExpired = false): RequeueRequest {
  const keys = recoveryKeys(PREFIX, DEAD);
  return {
    keys,
    instanceId: DEAD,
    token,
    onlyIfExpired,
    sidekiq: SIDEKIQ_KEYS,
    poison: NO_POISON,
    holdSuspects: false,
    running: [],
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function byJid(jobs: readonly JobResult[]): Record<string, string> {
  return Object.fromEntries(jobs.map((job) => [job.jid, `${job.outcome} ${job.detail}`]));
}

async function recoverOwn(
  connection: RedisConnection,
  instanceId = DEAD,
  settings = SETTINGS,
): Promise<RecoveryResult> {
  return recoverRecord(
    connection,
    settings,
    { instanceId, onlyIfExpired: false, cause: 'test', holdSuspects: false },
    captureLogger().log,
  );
}

describe('the requeue script', () => {
  it('pushes each job string back unchanged to the end BRPOP fetches from, adds its queue to queues, and empties the record', async () => {
    await redis().pipeline([
      ['SADD', 'queues', 'default'],
      ['LPUSH', 'queue:default', jobString('waiting-C')],
    ]);
    await writeRecord(DEAD, {
      'victim-A': entry('victim-A'),
      'victim-B': entry('victim-B'),
      'urgent-D': entry('urgent-D', 'critical'),
    });
    const result = await recoverOwn(await connect());

    expect(countOutcomes(jobsOf(result))).toEqual({
      requeued: 3,
      running: 0,
      queued: 0,
      malformed: 0,
      failed: 0,
      held: 0,
      poison: 0,
    });
    const queue = await list('queue:default');
    expect(queue[0]).toBe(jobString('waiting-C'));
    expect(queue.slice(1).sort()).toEqual([jobString('victim-A'), jobString('victim-B')]);
    expect(await list('queue:critical')).toEqual([jobString('urgent-D', 'critical')]);
    // BRPOP, as Sidekiq's fetch, takes a recovered job before the one that was waiting.
    expect(await redis().call('BRPOP', 'queue:default', 1)).not.toContain(jobString('waiting-C'));
    expect(((await redis().call('SMEMBERS', 'queues')) as string[]).sort()).toEqual(['critical', 'default']);
    expect(await redis().call('EXISTS', recoveryKeys(PREFIX, DEAD).jobs)).toBe(0);
    expect(await index()).toEqual([]);
  });

  it('leaves a job that is already back in its queue (a clean TERM requeued it)', async () => {
    await redis().call('RPUSH', 'queue:default', jobString('victim-A'));
    await writeRecord(DEAD, { 'victim-A': entry('victim-A'), 'victim-B': entry('victim-B') });
    const jobs = jobsOf(await recoverOwn(await connect()));

    expect(byJid(jobs)).toEqual({ 'victim-A': 'queued default', 'victim-B': 'requeued default' });
    expect((await list('queue:default')).sort()).toEqual([jobString('victim-A'), jobString('victim-B')]);
    expect(await recordOf(DEAD)).toEqual([]);
  });

  it("leaves a job running in another live process, but not one in the dead worker's own lingering work hash", async () => {
    await sidekiqProcess('pod-live:1:aaaaaaaaaaaa', ['victim-A']);
    // A SIGKILLed worker's hash keeps its last (fresh) beat and its jobs for up to 60 s.
    await sidekiqProcess(GHOST, ['victim-A', 'victim-B']);
    await writeRecord(DEAD, { 'victim-A': entry('victim-A'), 'victim-B': entry('victim-B') });
    const jobs = jobsOf(await recoverOwn(await connect()));

    expect(byJid(jobs)).toEqual({ 'victim-A': 'running default', 'victim-B': 'requeued default' });
    expect(await list('queue:default')).toEqual([jobString('victim-B')]);
    expect(await recordOf(DEAD)).toEqual([]);
  });

  it('requeues a job whose other process has stopped beating', async () => {
    await sidekiqProcess('pod-gone:1:bbbbbbbbbbbb', ['victim-A'], { ageS: 120 });
    await writeRecord(DEAD, { 'victim-A': entry('victim-A') });
    expect(byJid(jobsOf(await recoverOwn(await connect())))).toEqual({ 'victim-A': 'requeued default' });
  });

  it('drops and reports malformed entries without stopping, and requeues the good ones', async () => {
    await writeRecord(DEAD, {
      'not-json': '{"identity":',
      'an-array': '[1,2]',
      'no-queue': JSON.stringify({ identity: GHOST, payload: jobString('no-queue') }),
      'no-identity': JSON.stringify({ queue: 'default', payload: jobString('no-identity') }),
      'payload-object': JSON.stringify({ identity: GHOST, queue: 'default', payload: { jid: 'payload-object' } }),
      'payload-garbage': JSON.stringify({ identity: GHOST, queue: 'default', payload: 'not json at all' }),
      'other-jid': JSON.stringify({ identity: GHOST, queue: 'default', payload: jobString('someone-else') }),
      'no-class': JSON.stringify({
        identity: GHOST,
        queue: 'default',
        payload: '{"jid":"no-class","queue":"default"}',
      }),
      'other-queue': JSON.stringify({
        identity: GHOST,
        queue: 'default',
        payload: jobString('other-queue', 'critical'),
      }),
      'too-long': entry('too-long').replace('600.0', `600.0,"${'x'.repeat(MAX_JOB_BYTES)}"`),
      good: entry('good'),
    });
    const { log, records } = captureLogger();
    const result = await recoverRecord(
      await connect(),
      SETTINGS,
      { instanceId: DEAD, onlyIfExpired: false, cause: 'test', holdSuspects: false },
      log,
    );

    expect(byJid(jobsOf(result))).toEqual({
      'not-json': 'malformed not a JSON object',
      'an-array': 'malformed no process',
      'no-queue': 'malformed no queue',
      'no-identity': 'malformed no process',
      'payload-object': 'malformed no payload string',
      'payload-garbage': 'malformed payload is not a JSON object',
      'other-jid': 'malformed payload has another jid',
      'no-class': 'malformed payload has no class',
      'other-queue': 'malformed payload is of another queue',
      'too-long': `malformed longer than ${MAX_JOB_BYTES} bytes`,
      good: 'requeued default',
    });
    expect(await list('queue:default')).toEqual([jobString('good')]);
    expect(await recordOf(DEAD)).toEqual([]);
    const dropped = records.filter((record) => String(record.msg).startsWith('malformed job record entries dropped'));
    expect(dropped).toHaveLength(1);
    expect(dropped[0]).toMatchObject({ instanceId: DEAD, count: 10, byReason: { 'no process': 2 } });
    expect(dropped[0]?.jids).toHaveLength(5);
    expect(records.find((record) => record.msg === 'recovered the jobs of a dead worker')).toMatchObject({
      instanceId: DEAD,
      requeued: 1,
      malformed: 10,
    });
  });

  it("honours Sidekiq's redis-namespace for queues, queues set and processes", async () => {
    const settings = { ...SETTINGS, sidekiq: sidekiqKeys('myapp') };
    await sidekiqProcess('pod-live:1:aaaaaaaaaaaa', ['victim-A'], { namespace: 'myapp' });
    await writeRecord(DEAD, { 'victim-A': entry('victim-A'), 'victim-B': entry('victim-B') });
    const jobs = jobsOf(await recoverOwn(await connect(), DEAD, settings));

    expect(byJid(jobs)).toEqual({ 'victim-A': 'running default', 'victim-B': 'requeued default' });
    expect(await list('myapp:queue:default')).toEqual([jobString('victim-B')]);
    expect(await redis().call('SMEMBERS', 'myapp:queues')).toEqual(['default']);
    expect(await redis().call('EXISTS', 'queue:default', 'queues')).toBe(0);
  });

  it('keeps a job Redis refuses (a queue key of another type) for a later run, and requeues it exactly once then', async () => {
    await redis().call('SET', 'queue:broken', 'not a list');
    await writeRecord(DEAD, { 'victim-A': entry('victim-A', 'broken'), 'victim-B': entry('victim-B') });
    const connection = await connect();
    const first = jobsOf(await recoverOwn(connection));

    expect(first.find((job) => job.jid === 'victim-A')).toMatchObject({
      outcome: 'failed',
      detail: expect.stringMatching(/^WRONGTYPE/),
    });
    expect(await recordOf(DEAD)).toEqual(['victim-A']);
    expect(await index()).toEqual([DEAD]);
    expect(await list('queue:default')).toEqual([jobString('victim-B')]);

    await redis().call('DEL', 'queue:broken');
    expect(byJid(jobsOf(await recoverOwn(connection)))).toEqual({ 'victim-A': 'requeued broken' });
    expect(byJid(jobsOf(await recoverOwn(connection)))).toEqual({});
    expect(await list('queue:broken')).toEqual([jobString('victim-A', 'broken')]);
    expect(await list('queue:default')).toEqual([jobString('victim-B')]);
    expect(await index()).toEqual([]);
  });

  it('keeps every job when Redis is out of memory, and requeues them once it is not', async () => {
    await writeRecord(DEAD, { 'victim-A': entry('victim-A'), 'victim-B': entry('victim-B') });
    const connection = await connect();
    const keys = recoveryKeys(PREFIX, DEAD);
    const token = (await acquireLock(connection.client, keys.lock, 10_000)) ?? '';
    const request = requeueOfDead(token);
    await redis().call('CONFIG', 'SET', 'maxmemory', 1);
    try {
      const refused = await requeueRecord(connection.client, request);
      expect(
        refused.kind === 'recovered' && refused.jobs.map((job) => `${job.outcome} ${job.detail.slice(0, 3)}`),
      ).toEqual(['failed OOM', 'failed OOM']);
    } finally {
      await redis().call('CONFIG', 'SET', 'maxmemory', 0);
    }
    expect(await recordOf(DEAD)).toEqual(['victim-A', 'victim-B']);
    const retried = await requeueRecord(connection.client, request);
    expect(retried.kind === 'recovered' && countOutcomes(retried.jobs).requeued).toBe(2);
  });

  it('requeues nothing twice when run again, as after a reply lost to a timeout', async () => {
    await writeRecord(DEAD, { 'victim-A': entry('victim-A'), 'victim-B': entry('victim-B') });
    const connection = await connect();
    await recoverOwn(connection);
    expect(jobsOf(await recoverOwn(connection))).toEqual([]);
    expect(await list('queue:default')).toHaveLength(2);
  });

  it('does nothing without the lock, or for a peer whose heartbeat record exists', async () => {
    await writeRecord(DEAD, { 'victim-A': entry('victim-A') });
    const connection = await connect();
    const keys = recoveryKeys(PREFIX, DEAD);
    expect(await requeueRecord(connection.client, requeueOfDead('not-the-holder'))).toEqual({ kind: 'not-held' });

    await redis().call('HSET', keys.instance, 'state', 'running');
    const token = await acquireLock(connection.client, keys.lock, 10_000);
    expect(await requeueRecord(connection.client, requeueOfDead(token ?? '', true))).toEqual({
      kind: 'alive',
    });
    expect(await recordOf(DEAD)).toEqual(['victim-A']);
    expect(await list('queue:default')).toEqual([]);
  });
});

describe('poison jobs', () => {
  const POISON = { ...SETTINGS, poison: { maxDeaths: 3, windowMs: 72 * 3_600_000 } };
  const recoverWithDeaths = (connection: RedisConnection) =>
    recoverRecord(
      connection,
      POISON,
      { instanceId: DEAD, onlyIfExpired: false, cause: 'OOM-killed', holdSuspects: false },
      captureLogger().log,
    );

  it("counts each worker death while a job ran, and after the third sends it to Sidekiq's Dead set instead of its queue", async () => {
    const connection = await connect();
    for (const death of [1, 2]) {
      await writeRecord(DEAD, { 'victim-A': entry('victim-A') });
      const result = await recoverWithDeaths(connection);
      expect(jobsOf(result)).toEqual([{ jid: 'victim-A', outcome: 'requeued', detail: 'default', deaths: death }]);
      expect(await redis().call('RPOP', 'queue:default')).toBe(jobString('victim-A'));
    }
    await writeRecord(DEAD, { 'victim-A': entry('victim-A') });
    const { log, records } = captureLogger();
    const third = await recoverRecord(
      connection,
      POISON,
      { instanceId: DEAD, onlyIfExpired: false, cause: 'OOM-killed', holdSuspects: false },
      log,
    );
    expect(third.kind === 'recovered' && third.buried).toEqual([
      { jid: 'victim-A', queue: 'default', class: 'SleepJob', deaths: 3 },
    ]);
    expect(await list('queue:default')).toEqual([]);
    expect(await recordOf(DEAD)).toEqual([]);
    expect(await redis().call('HEXISTS', 'drain-init:job-deaths', 'victim-A')).toBe(0);
    const dead = (await redis().call('ZRANGE', 'dead', 0, -1, 'WITHSCORES')) as string[];
    expect(dead).toHaveLength(2);
    const entryInDead = JSON.parse(dead[0] ?? '') as Record<string, unknown>;
    expect(entryInDead).toMatchObject({ jid: 'victim-A', class: 'SleepJob', error_class: 'DrainInit::WorkerDied' });
    expect(String(entryInDead.error_message)).toContain('died 3 times in 72 h (last: OOM-killed)');
    expect(dead[0]).toContain('"args":[600.0,"victim-A"]');
    expect(Math.abs(Number(dead[1]) - Date.now() / 1000)).toBeLessThan(5);
    const warning = records.find((line) => String(line.msg).startsWith("job moved to Sidekiq's Dead set"));
    expect(warning).toMatchObject({ jid: 'victim-A', class: 'SleepJob', queue: 'default', deaths: 3 });
    expect(JSON.stringify(warning)).not.toContain('600.0');
  });

  it('counts only the deaths within the window, and none with 0', async () => {
    const connection = await connect();
    await redis().call('HSET', 'drain-init:job-deaths', 'victim-A', `2:${Date.now() - 73 * 3_600_000}`);
    await writeRecord(DEAD, { 'victim-A': entry('victim-A') });
    expect(jobsOf(await recoverWithDeaths(connection))[0]).toMatchObject({ outcome: 'requeued', deaths: 1 });
    await writeRecord(DEAD, { 'victim-B': entry('victim-B') });
    await redis().call('HSET', 'drain-init:job-deaths', 'victim-B', `9:${Date.now()}`);
    expect(jobsOf(await recoverOwn(connection))[0]).toMatchObject({ jid: 'victim-B', outcome: 'requeued' });
  });

  it('holds a job one death short of the Dead set in the record until it is released alone; a peer requeues it uncounted', async () => {
    const connection = await connect();
    const keys = recoveryKeys(PREFIX, DEAD);
    const recoverHolding = (process?: string) =>
      recoverRecord(
        connection,
        POISON,
        { instanceId: DEAD, onlyIfExpired: false, cause: 'OOM-killed', holdSuspects: true, process },
        captureLogger().log,
      );
    await writeRecord(DEAD, { 'victim-A': entry('victim-A') });
    expect(jobsOf(await recoverHolding())[0]).toMatchObject({ outcome: 'requeued', deaths: 1 });
    expect(await redis().call('RPOP', 'queue:default')).toBe(jobString('victim-A'));

    await writeRecord(DEAD, { 'victim-A': entry('victim-A') });
    expect(jobsOf(await recoverHolding())).toEqual([
      { jid: 'victim-A', outcome: 'held', detail: 'default', deaths: 2 },
    ]);
    expect(await list('queue:default')).toEqual([]);
    expect(await redis().call('HGET', keys.jobs, 'victim-A')).toBe(`{"held":true,${entry('victim-A').slice(1)}`);
    // Held, the job is neither taken with its process nor counted again with the whole record.
    expect(jobsOf(await recoverHolding('pod-dead:1'))).toEqual([]);
    expect(jobsOf(await recoverHolding())).toEqual([
      { jid: 'victim-A', outcome: 'held', detail: 'default', deaths: 2 },
    ]);

    expect(await releaseHeldJob(connection.client, POISON, DEAD, 'victim-A')).toBe('default');
    expect(await releaseHeldJob(connection.client, POISON, DEAD, 'victim-A')).toBeUndefined();
    expect(await list('queue:default')).toEqual([jobString('victim-A')]);
    expect(await recordOf(DEAD)).toEqual([]);
    await redis().call('RPOP', 'queue:default');

    // Fetched again and its worker died a third time: the Dead set.
    await writeRecord(DEAD, { 'victim-A': entry('victim-A') });
    const third = await recoverHolding();
    expect(third.kind === 'recovered' && third.buried.map((job) => job.deaths)).toEqual([3]);

    // A peer recovering a dead instance's record puts a held job back, its deaths as they were.
    await redis().call('HSET', 'drain-init:job-deaths', 'victim-B', `2:${Date.now()}`);
    await writeRecord(DEAD, { 'victim-B': `{"held":true,${entry('victim-B').slice(1)}` });
    const peer = await recoverWithDeaths(connection);
    expect(jobsOf(peer)).toEqual([{ jid: 'victim-B', outcome: 'requeued', detail: 'default', deaths: 2 }]);
    expect(await list('queue:default')).toEqual([jobString('victim-B')]);
    expect(String(await redis().call('HGET', 'drain-init:job-deaths', 'victim-B'))).toMatch(/^2:/);
  });

  it('trims the Dead set as Sidekiq does', async () => {
    const connection = await connect();
    await redis().call('ZADD', 'dead', Date.now() / 1000 - 200 * 24 * 3600, 'an-old-one');
    await redis().call('HSET', 'drain-init:job-deaths', 'victim-A', `2:${Date.now()}`);
    await writeRecord(DEAD, { 'victim-A': entry('victim-A') });
    await recoverWithDeaths(connection);
    expect(await redis().call('ZSCORE', 'dead', 'an-old-one')).toBeNull();
    expect(await redis().call('ZCARD', 'dead')).toBe(1);
  });
});

describe('a redis-server killed while the script runs', () => {
  let durable: RedisServer | undefined;
  afterEach(async () => {
    await durable?.stop();
  });

  it('keeps either the whole record or none of it: no job lost, none doubled', async () => {
    durable = await startRedis({ extraArgs: ['--appendonly', 'yes', '--appendfsync', 'always'] });
    const server = durable;
    // Each job must be looked for in a long queue, so the script runs for seconds.
    await server.call(
      'EVAL',
      "for i = 1, tonumber(ARGV[1]) do redis.call('RPUSH', KEYS[1], 'filler-' .. i) end",
      1,
      'queue:default',
      300_000,
    );
    const jids = Array.from({ length: 400 }, (_, index) => `victim-${index}`);
    const keys = recoveryKeys(PREFIX, DEAD);
    await server.call('HSET', keys.jobs, ...jids.flatMap((jid) => [jid, entry(jid)]));
    const client = new Redis(server.url, { maxRetriesPerRequest: 0, retryStrategy: () => null });
    client.on('error', () => {});
    try {
      const token = (await acquireLock(client, keys.lock, 60_000)) ?? '';
      const running = requeueRecord(client, requeueOfDead(token));
      running.catch(() => {});
      await sleep(200);
      // While a script runs, Redis answers nobody else: a PING left waiting shows it is in the middle.
      const ping = await Promise.race([
        server.call('PING').then(
          () => 'answered',
          () => 'failed',
        ),
        sleep(400).then(() => 'waiting'),
      ]);
      expect(ping).toBe('waiting');
      process.kill(server.pid(), 'SIGKILL');
      await expect(running).rejects.toThrow();
    } finally {
      client.disconnect();
    }
    await server.restart();

    const length = Number(await server.command('LLEN', 'queue:default'));
    const left = Number(await server.command('HLEN', keys.jobs));
    expect({ length, left }).toEqual({ length: 300_000, left: 400 });
  });
});

describe('the lock', () => {
  it('is won by exactly one of two instances racing for it', async () => {
    const [a, b] = [await connect(), await connect()];
    for (let round = 0; round < 20; round++) {
      const key = `${PREFIX}:recovery-lock:race-${round}`;
      const tokens = await Promise.all([acquireLock(a.client, key, 10_000), acquireLock(b.client, key, 10_000)]);
      expect(tokens.filter((token) => token !== undefined)).toHaveLength(1);
    }
  });

  it('is released only by its holder, not by one whose lock expired and was taken', async () => {
    const { client } = await connect();
    const key = `${PREFIX}:recovery-lock:x`;
    const first = (await acquireLock(client, key, 50)) ?? '';
    await sleep(120);
    const second = (await acquireLock(client, key, 10_000)) ?? '';
    expect(second).not.toBe('');
    expect(await releaseLock(client, key, first)).toBe(false);
    expect(await redis().command('GET', key)).toBe(second);
    expect(await releaseLock(client, key, second)).toBe(true);
    expect(await redis().call('EXISTS', key)).toBe(0);
  });
});

describe('dead peers', () => {
  it('are found through the index when their heartbeat record has expired, never this instance', async () => {
    await writeRecord(DEAD, { 'victim-A': entry('victim-A') });
    await writeRecord('pod-alive', { 'job-B': entry('job-B') });
    await writeRecord(OWN, { 'job-C': entry('job-C') });
    await redis().call('HSET', recoveryKeys(PREFIX, 'pod-alive').instance, 'state', 'running');
    expect(await findDeadPeers(await connect(), PREFIX, OWN)).toEqual([DEAD]);
  });

  it('have their record recovered by exactly one of two live instances racing for it', async () => {
    const jids = Array.from({ length: 20 }, (_, index) => `victim-${index}`);
    await writeRecord(DEAD, Object.fromEntries(jids.map((jid) => [jid, entry(jid)])));
    const [a, b] = [await connect(), await connect()];
    const results = (
      await Promise.all([
        recoverDeadPeers(a, SETTINGS, 'pod-a', captureLogger().log),
        recoverDeadPeers(b, SETTINGS, 'pod-b', captureLogger().log),
      ])
    ).flat();

    const requeued = results
      .flatMap((result) => (result.kind === 'recovered' ? result.jobs : []))
      .filter((job) => job.outcome === 'requeued');
    expect(requeued.map((job) => job.jid).sort()).toEqual([...jids].sort());
    expect((await list('queue:default')).sort()).toEqual(jids.map((jid) => jobString(jid)).sort());
    expect(await redis().call('EXISTS', recoveryKeys(PREFIX, DEAD).jobs, recoveryKeys(PREFIX, DEAD).lock)).toBe(0);
    expect(await index()).toEqual([]);
  });

  it('are recovered 100 at most per look: a hostile index of 150 junk entries takes two', async () => {
    const junk = Array.from({ length: 150 }, (_, index) => [`junk-${index}`, 'dead-token']).flat();
    await redis().call('HSET', recoveryKeys(PREFIX, OWN).index, ...junk);
    const connection = await connect();
    expect(await recoverDeadPeers(connection, SETTINGS, OWN, captureLogger().log)).toHaveLength(100);
    expect(await redis().call('HLEN', recoveryKeys(PREFIX, OWN).index)).toBe(50);
    expect(await recoverDeadPeers(connection, SETTINGS, OWN, captureLogger().log)).toHaveLength(50);
    expect(await index()).toEqual([]);
  });

  it('include this instance only when it asks for its own record (after a container restart)', async () => {
    await writeRecord(OWN, { 'victim-A': entry('victim-A') });
    // The restarted instance's heartbeat record is already back.
    await redis().call('HSET', recoveryKeys(PREFIX, OWN).instance, 'state', 'starting');
    const connection = await connect();
    expect(await recoverDeadPeers(connection, SETTINGS, OWN, captureLogger().log)).toEqual([]);
    expect(byJid(jobsOf(await recoverOwn(connection, OWN)))).toEqual({ 'victim-A': 'requeued default' });
  });

  it("are left alone when Redis fails, the jobs kept, the connection's outage line the only warning", async () => {
    await writeRecord(DEAD, { 'victim-A': entry('victim-A') });
    const connectionLog = captureLogger();
    const connection = connectRedis(parseRedisUrl(redis().url), connectionLog.log, 'test', systemClock);
    connections.push(connection);
    await waitFor(() => (connection.client.status === 'ready' ? true : undefined), 'a connection to Redis');
    await redis().call('CLIENT', 'PAUSE', 1500, 'ALL');
    const { log, records } = captureLogger();
    const result = await recoverRecord(
      connection,
      SETTINGS,
      { instanceId: DEAD, onlyIfExpired: true, cause: 'test', holdSuspects: false },
      log,
    );
    expect(result).toMatchObject({ kind: 'failed', reason: expect.stringMatching(/timed out/i), quiet: true });
    expect(records.filter((record) => record.level === 40)).toEqual([]);
    expect(connectionLog.records.filter((record) => record.level === 40).map((record) => record.msg)).toEqual([
      'Redis unavailable; the worker runs on',
    ]);
    await sleep(1_600);
    expect(await recordOf(DEAD)).toEqual(['victim-A']);
  });
});

describe('Sidekiq Pro', () => {
  it('recovers its own jobs: the record is left alone when super_processes exists', async () => {
    await redis().call('SADD', 'super_processes', 'pod-pro:1:cccccccccccc');
    await writeRecord(DEAD, { 'victim-A': entry('victim-A') });
    const { log, records } = captureLogger();
    const result = await recoverRecord(
      await connect(),
      SETTINGS,
      { instanceId: DEAD, onlyIfExpired: true, cause: 'test', holdSuspects: false },
      log,
    );
    expect(result).toEqual({ kind: 'sidekiq-pro', keys: ['super_processes'] });
    expect(records.some((record) => String(record.msg).startsWith("Sidekiq Pro's reliable fetch is in use"))).toBe(
      true,
    );
    expect(await recordOf(DEAD)).toEqual(['victim-A']);
    expect(await list('queue:default')).toEqual([]);
  });

  it("is seen by a live process's private queue:sq| list", async () => {
    await sidekiqProcess('pod-pro:1:cccccccccccc', [], { queues: ['critical', 'default'] });
    await redis().call('LPUSH', 'queue:sq|pod-pro:1:cccccccccccc|default', jobString('in-pro'));
    await writeRecord(DEAD, { 'victim-A': entry('victim-A') });
    const result = await recoverRecord(
      await connect(),
      SETTINGS,
      { instanceId: DEAD, onlyIfExpired: true, cause: 'test', holdSuspects: false },
      captureLogger().log,
    );
    expect(result).toEqual({ kind: 'sidekiq-pro', keys: ['queue:sq|pod-pro:1:cccccccccccc|default'] });
  });
});

describe('the mirror', () => {
  const inFlight = (jid: string, identity = GHOST): InFlightJob => ({
    identity,
    threadId: `t-${jid}`,
    queue: 'default',
    payload: jobString(jid),
    jid,
    class: 'SleepJob',
    runAtEpochS: 1,
  });
  const transactions = async (): Promise<number> =>
    Number(/cmdstat_exec:calls=(\d+)/.exec(await redis().command('INFO', 'commandstats'))?.[1] ?? 0);

  it('writes each change as a diff in one transaction, and nothing while nothing changes', async () => {
    const mirror = new JobMirror(await connect(), recoveryKeys(PREFIX, OWN), OWN, 'own-token', undefined);
    expect(await mirror.update({ identities: [GHOST], jobs: [inFlight('a'), inFlight('b')] })).toBe(true);
    expect(await recordOf(OWN)).toEqual(['a', 'b']);
    expect(await index()).toEqual([OWN]);
    expect(JSON.parse(await redis().command('HGET', recoveryKeys(PREFIX, OWN).jobs, 'a'))).toEqual({
      identity: GHOST,
      queue: 'default',
      payload: jobString('a'),
    });

    await redis().call('CONFIG', 'RESETSTAT');
    await mirror.update({ identities: [GHOST], jobs: [inFlight('b'), inFlight('c')] });
    expect(await recordOf(OWN)).toEqual(['b', 'c']);
    const stats = await redis().command('INFO', 'commandstats');
    // One HSET of the new entry, one of the index (instance id -> owner token).
    expect(stats).toMatch(/cmdstat_hset:calls=2,/);
    expect(stats).toMatch(/cmdstat_hdel:calls=1,/);
    expect(await transactions()).toBe(1);

    await mirror.update({ identities: [GHOST], jobs: [inFlight('b'), inFlight('c')] });
    expect(await transactions()).toBe(1);
  });

  it("keeps a killed worker's jobs when its process vanishes from the read, and clears them after a clean exit", async () => {
    const mirror = new JobMirror(await connect(), recoveryKeys(PREFIX, OWN), OWN, 'own-token', undefined);
    await mirror.update({ identities: [GHOST], jobs: [inFlight('a')] });
    await mirror.update({ identities: [], jobs: [] });
    expect(await recordOf(OWN)).toEqual(['a']);
    await mirror.clear();
    expect(await recordOf(OWN)).toEqual([]);
  });

  it('forgets what recovery took, so a later clean exit leaves a job the recovery had to keep', async () => {
    await redis().call('SET', 'queue:broken', 'not a list');
    const connection = await connect();
    const mirror = new JobMirror(connection, recoveryKeys(PREFIX, OWN), OWN, 'own-token', undefined);
    await mirror.update({
      identities: [GHOST],
      jobs: [{ ...inFlight('a'), queue: 'broken', payload: jobString('a', 'broken') }, inFlight('b')],
    });
    expect(countOutcomes(jobsOf(await recoverOwn(connection, OWN)))).toMatchObject({ requeued: 1, failed: 1 });
    mirror.forget();
    expect(mirror.size).toBe(0);
    await mirror.clear();
    expect(await recordOf(OWN)).toEqual(['a']);
  });

  it('writes the whole record again after Redis restarts and loses it', async () => {
    const connection = await connect();
    const mirror = new JobMirror(connection, recoveryKeys(PREFIX, OWN), OWN, 'own-token', undefined);
    const read = { identities: [GHOST], jobs: [inFlight('a'), inFlight('b')] };
    await mirror.update(read);
    await redis().restart();
    await waitFor(() => (connection.client.status === 'ready' ? true : undefined), 'the reconnection');
    expect(await recordOf(OWN)).toEqual([]);
    expect(await mirror.update(read)).toBe(true);
    expect(await recordOf(OWN)).toEqual(['a', 'b']);
    expect(await index()).toEqual([OWN]);
  });

  it('mirrors a real SIGKILLed Sidekiq 6.4.1 and puts its jobs back as its own TERM shutdown would', async () => {
    await writeDump(redis(), capturedDump('run2-01-before-sigkill'));
    const connection = await connect();
    const snapshot = await readSidekiq(connection.client);
    const mirror = new JobMirror(connection, recoveryKeys(PREFIX, OWN), OWN, 'own-token', undefined);
    await mirror.update({ identities: snapshot.processes.map((process) => process.identity), jobs: snapshot.jobs });
    // SIGKILL: the victims are in no queue, their only copy is the lingering work hash and the record.
    await writeDump(redis(), capturedDump('run2-02-just-after-sigkill'));
    const victims = snapshot.jobs.map((job) => job.payload);
    expect(victims).toHaveLength(2);

    expect(countOutcomes(jobsOf(await recoverOwn(connection, OWN)))).toMatchObject({ requeued: 2 });
    const queue = await list('queue:default');
    expect(queue).toHaveLength(3);
    expect(queue[0]).toContain('waiting-C');
    expect(queue.slice(1).sort()).toEqual([...victims].sort());
  });
});

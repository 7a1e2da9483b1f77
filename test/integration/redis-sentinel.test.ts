// drain-init pointed at Redis through a real redis-sentinel on loopback: it finds the primary by name,
// and when the primary is killed and the sentinel promotes the replica, its record and /metrics follow.
import { afterEach, describe, expect, it } from 'vitest';
import { parseExposition } from '../helpers/exposition.js';
import { killedAfterEach, logLines } from '../helpers/pid1.js';
import { probeRequest, startWithProbe } from '../helpers/probe.js';
import { startRedis, type RedisServer } from '../helpers/redis.js';
import { startSentinel, type Sentinel } from '../helpers/sentinel.js';

const track = killedAfterEach();
const MASTER = 'jobs-primary';
const INSTANCE = 'sentinel-test';
const RECORD = `drain-init:instance:${INSTANCE}`;

let cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  cleanups = [];
});

async function until<T>(probe: () => Promise<T | undefined>, what: string, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** A primary, its replica in sync, and a sentinel that knows both. */
async function sentinelBed(): Promise<{ primary: RedisServer; replica: RedisServer; sentinel: Sentinel }> {
  const primary = await startRedis();
  cleanups.push(() => primary.stop());
  const replica = await startRedis({ extraArgs: ['--replicaof', '127.0.0.1', String(primary.port)] });
  cleanups.push(() => replica.stop());
  await until(
    async () => (/master_link_status:up/.test(await replica.command('INFO', 'replication')) ? true : undefined),
    'the replica in sync',
  );
  const sentinel = await startSentinel(MASTER, primary.port);
  cleanups.push(() => sentinel.stop());
  // Sentinel learns of replicas from the primary's INFO, every 10 s at first.
  await until(async () => {
    const replicas = await sentinel.call('SENTINEL', 'replicas', MASTER);
    return Array.isArray(replicas) && replicas.length === 1 ? true : undefined;
  }, 'the sentinel to know the replica');
  return { primary, replica, sentinel };
}

async function lastBeat(server: RedisServer): Promise<number | undefined> {
  const beat = Number(await server.command('HGET', RECORD, 'lastBeat'));
  return beat > 0 ? beat : undefined;
}

describe('Redis Sentinel', () => {
  it('writes to the primary the sentinel names, and follows it when the primary dies and the replica is promoted', async () => {
    const { primary, replica, sentinel } = await sentinelBed();
    const { run, port } = await startWithProbe(
      [
        ...['--redis-sentinels', `127.0.0.1:${sentinel.port}`, '--redis-master-name', MASTER],
        ...['--instance-id', INSTANCE, '--heartbeat-interval', '250ms', '--preset', 'sidekiq'],
        ...['--', 'sleep', '120'],
      ],
      // The URL's host is not a server: only the sentinel can say where the primary is.
      { env: { REDIS_URL: 'redis://not-a-host.invalid:1/0' } },
    );
    track(run);
    await until(() => lastBeat(primary), "drain-init's record on the primary", 15_000);
    expect(await primary.command('CLIENT', 'LIST')).toMatch(/ name=drain-init:/);

    await primary.stop();
    const promoted = await until(
      async () => ((await sentinel.primaryPort()) === replica.port ? true : undefined),
      'the sentinel to promote the replica',
    );
    expect(promoted).toBe(true);
    const afterFailover = (await lastBeat(replica)) ?? 0;
    // Beats written on the new primary itself, not replicated from the old one.
    const newer = await until(
      async () => {
        const beat = await lastBeat(replica);
        return beat !== undefined && beat > afterFailover + 500 ? beat : undefined;
      },
      "drain-init's heartbeat on the new primary",
      15_000,
    );
    expect(newer).toBeGreaterThan(afterFailover);
    expect(await replica.command('CLIENT', 'LIST')).toMatch(/ name=drain-init:/);
    const redisUp = await waitForRedisUp(port);
    expect(redisUp).toBe(1);
    const messages = logLines(run.stderr()).map((line) => line.msg);
    expect(messages).toContain('Redis unavailable; the worker runs on');
    expect(messages).toContain('Redis available again');
    const endpoint = logLines(run.stderr()).find((line) => line.msg === 'connected to Redis')?.redis;
    expect(endpoint).toBe(`redis://${MASTER}/0 via sentinels 127.0.0.1:${sentinel.port}`);
  }, 90_000);

  it('follows a failover the sentinel is told to make while the old primary stays up as a replica', async () => {
    const { primary, replica, sentinel } = await sentinelBed();
    const { run, port } = await startWithProbe([
      ...['--redis-url', `redis://${MASTER}/0`, '--redis-sentinels', `127.0.0.1:${sentinel.port}`],
      ...['--instance-id', INSTANCE, '--heartbeat-interval', '250ms', '--', 'sleep', '120'],
    ]);
    track(run);
    await until(() => lastBeat(primary), "drain-init's record on the primary", 15_000);

    expect(await sentinel.call('SENTINEL', 'FAILOVER', MASTER)).toBe('OK');
    await until(async () => ((await sentinel.primaryPort()) === replica.port ? true : undefined), 'the failover');
    await until(
      async () => (/role:slave/.test(await primary.command('INFO', 'replication')) ? true : undefined),
      'the old primary to become a replica',
    );
    const afterFailover = (await lastBeat(replica)) ?? 0;
    await until(
      async () => {
        const beat = await lastBeat(replica);
        return beat !== undefined && beat > afterFailover + 500 ? beat : undefined;
      },
      "drain-init's heartbeat on the new primary",
      15_000,
    );
    expect(await replica.command('CLIENT', 'LIST')).toMatch(/ name=drain-init:/);
    expect(await primary.command('CLIENT', 'LIST')).not.toMatch(/ name=drain-init:/);
    expect(await waitForRedisUp(port)).toBe(1);
  }, 90_000);
});

async function waitForRedisUp(port: number): Promise<number | undefined> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const families = parseExposition((await probeRequest(port, '/metrics')).body);
    const value = families.get('drain_init_redis_up')?.samples[0]?.value;
    if (value === 1 || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

// One live owner per record, against a real redis-server: the claim of an instance id, a live owner found by
// its named connection (or, where CLIENT LIST is refused, by its moving beat), a dead owner's record taken
// over at once, and both logs saying what happened.
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/lib/clock.js';
import { claimInstanceId, type ClaimRequest } from '../../src/record/claim.js';
import { startInstanceRecorder, type InstanceRecorder } from '../../src/record/recorder.js';
import { connectionName } from '../../src/record/schema.js';
import { connectRedis, type RedisConnection } from '../../src/redis/connection.js';
import { parseRedisUrl } from '../../src/redis/url.js';
import { captureLogger } from '../helpers/fake.js';
import { eventually, waitFor } from '../helpers/pid1.js';
import { redisTestBed } from '../helpers/redis.js';

const redis = redisTestBed();
const BEAT_MS = 1_000;
const opened: { connection: RedisConnection; recorder?: InstanceRecorder }[] = [];

afterEach(async () => {
  for (const { connection, recorder } of opened.splice(0)) {
    await recorder?.close({ state: 'exited' });
    connection.close();
  }
});

/** A drain-init's own connection, named for its token as drain-init names it. */
async function connect(token: string, url = redis().url): Promise<RedisConnection> {
  const connection = connectRedis(parseRedisUrl(url), captureLogger().log, connectionName(token), systemClock);
  opened.push({ connection });
  await waitFor(() => (connection.client.status === 'ready' ? true : undefined), 'a connection to Redis');
  return connection;
}

function request(token: string, requestedId = 'web-1'): ClaimRequest {
  return { requestedId, prefix: 'drain-init', token, ttlMs: 3 * BEAT_MS, pid: 4242, hostname: `host-of-${token}` };
}

/** A live drain-init: a claim, then a recorder beating under it on its named connection. */
async function liveOwner(token: string, url?: string) {
  const connection = await connect(token, url);
  const { log, records } = captureLogger();
  const claimed = await claimInstanceId(connection.client, request(token), systemClock, log);
  const config = {
    instanceId: claimed.instanceId,
    redisPrefix: 'drain-init',
    heartbeatIntervalMs: BEAT_MS,
    heartbeatTtlMs: 3 * BEAT_MS,
  };
  const recorder = startInstanceRecorder(
    connection,
    config,
    { token, beatEveryMs: BEAT_MS },
    log,
    { program: 'sidekiq', version: '1' },
    systemClock,
  );
  opened.push({ connection, recorder });
  await eventually(
    async () => ((await redis().command('HGET', 'drain-init:instance:web-1', 'lastBeat')) !== '' ? true : undefined),
    'the first beat',
  );
  return { claimed, records, connection };
}

describe('claiming an instance id', () => {
  it('claims a free id, and the same id again for the same token', async () => {
    const connection = await connect('aaaa');
    const { log } = captureLogger();
    expect(await claimInstanceId(connection.client, request('aaaa'), systemClock, log)).toEqual({
      instanceId: 'web-1',
      tookOverFrom: undefined,
    });
    expect(await redis().command('HGET', 'drain-init:instance:web-1', 'owner')).toBe('aaaa');
    expect(Number(await redis().command('PTTL', 'drain-init:instance:web-1'))).toBeGreaterThan(0);
    expect((await claimInstanceId(connection.client, request('aaaa'), systemClock, log)).instanceId).toBe('web-1');
  });

  it('takes the next id when the owner lives, warns naming both, and the owner logs it too', async () => {
    const first = await liveOwner('aaaa');
    const second = await connect('bbbb');
    const { log, records } = captureLogger();
    const claimed = await claimInstanceId(second.client, request('bbbb'), systemClock, log);
    expect(claimed).toEqual({ instanceId: 'web-1-2', tookOverFrom: undefined });
    expect(await redis().command('HGET', 'drain-init:instance:web-1', 'owner')).toBe('aaaa');
    const warning = records.find((line) =>
      String(line.msg).startsWith("instance id 'web-1' belongs to a live drain-init"),
    );
    expect(warning).toMatchObject({
      owner: { pid: String(process.pid), hostname: expect.any(String) },
      instead: 'web-1-2',
    });
    await waitFor(
      () =>
        first.records.find((line) =>
          String(line.msg).includes("started with this instance id while this one runs: it took 'web-1-2' instead"),
        ),
      "the owner's warning",
    );
  });

  it("takes a dead owner's record over at once: its connection is gone", async () => {
    const dead = await connect('dddd');
    await claimInstanceId(dead.client, request('dddd'), systemClock, captureLogger().log);
    dead.close();
    await eventually(
      async () => (!(await redis().command('CLIENT', 'LIST')).includes(connectionName('dddd')) ? true : undefined),
      'the connection to close',
    );
    const restarted = await connect('eeee');
    const started = performance.now();
    const claimed = await claimInstanceId(restarted.client, request('eeee'), systemClock, captureLogger().log);
    expect(claimed).toEqual({ instanceId: 'web-1', tookOverFrom: 'dddd' });
    expect(performance.now() - started).toBeLessThan(BEAT_MS);
  });

  describe('where CLIENT LIST is refused', () => {
    async function limitedUrl(): Promise<string> {
      await redis().call('ACL', 'SETUSER', 'limited', 'on', '>secret', '~*', '&*', '+@all', '-client|list');
      return redis().url.replace('redis://', 'redis://limited:secret@');
    }

    it('tells a live owner by its moving beat, within one of its heartbeat intervals', async () => {
      const url = await limitedUrl();
      await liveOwner('aaaa');
      const second = await connect('bbbb', url);
      const started = performance.now();
      const claimed = await claimInstanceId(second.client, request('bbbb'), systemClock, captureLogger().log);
      expect(claimed.instanceId).toBe('web-1-2');
      expect(performance.now() - started).toBeGreaterThanOrEqual(BEAT_MS);
    });

    it("takes a dead owner's record over after one of its heartbeat intervals, not its TTL", async () => {
      const url = await limitedUrl();
      const owner = await liveOwner('aaaa');
      opened.find((entry) => entry.connection === owner.connection)?.recorder?.close({ state: 'exited' });
      owner.connection.close();
      const restarted = await connect('cccc', url);
      const claimed = await claimInstanceId(restarted.client, request('cccc'), systemClock, captureLogger().log);
      expect(claimed).toEqual({ instanceId: 'web-1', tookOverFrom: 'aaaa' });
    });
  });

  it('passes over an id whose key has another type', async () => {
    await redis().call('SET', 'drain-init:instance:web-1', 'x');
    const connection = await connect('aaaa');
    const { log, records } = captureLogger();
    expect((await claimInstanceId(connection.client, request('aaaa'), systemClock, log)).instanceId).toBe('web-1-2');
    expect(records.some((line) => String(line.msg).includes('has another type'))).toBe(true);
  });
});

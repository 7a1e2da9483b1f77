// The reliable fetch script against a real redis-server: it takes the next job of the first non-empty queue
// in the worker's order, as BRPOP does, and records it in the same step; it takes nothing when a key of
// drain-init's has another type or another drain-init owns the record.
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  FETCH_SCRIPT,
  fetchCall,
  parseFetchReply,
  type FetchReply,
  type FetchTarget,
} from '../../src/sidekiq/fetch.js';
import { sidekiqKeys } from '../../src/sidekiq/keys.js';
import { redisTestBed } from '../helpers/redis.js';

const redis = redisTestBed();
const target: FetchTarget = {
  record: 'drain-init:jobs:w1',
  index: 'drain-init:records',
  instance: 'drain-init:instance:w1',
  instanceId: 'w1',
  token: 'tok-1',
  sidekiq: sidekiqKeys(undefined),
};
const payload = (jid: string): string => JSON.stringify({ class: 'NoopJob', args: [], jid, queue: 'q' });

let client: Redis;
beforeAll(() => {
  client = new Redis(redis().url);
});
afterAll(() => {
  client.disconnect();
});

async function fetch(fetchId: string, queue: string, by = client, ...more: string[]): Promise<FetchReply> {
  const queues = [queue, ...more];
  const queueFetch = { queueKeys: queues.map((queue) => `queue:${queue}`), timeoutMs: 2_000 };
  const { keys, args } = fetchCall(queueFetch, target, 'host:7', fetchId);
  // Buffers, as the relay reads replies: a job is passed on as the bytes it is.
  const [name = 'EVAL', ...rest] = FETCH_SCRIPT.command(keys, args, true);
  const reply = await by.callBuffer(name, ...rest);
  return parseFetchReply(reply);
}

const shown = (reply: FetchReply): string =>
  reply.kind === 'job' ? `${reply.queueKey.toString()} ${reply.jid}` : reply.kind;

describe('the fetch script on a real Redis', () => {
  it("takes from the first non-empty of the worker's queues, oldest first, and records each job with its fetch", async () => {
    await redis().call('LPUSH', 'queue:a', payload('a1'), payload('a2'));
    await redis().call('LPUSH', 'queue:b', payload('b1'));
    expect(shown(await fetch('f1', 'b', client, 'a'))).toBe('queue:b b1');
    expect(shown(await fetch('f2', 'b', client, 'a'))).toBe('queue:a a1');
    expect(shown(await fetch('f3', 'c'))).toBe('empty');
    expect(shown(await fetch('f4', 'a'))).toBe('queue:a a2');
    const record = (await redis().call('HGETALL', target.record)) as string[];
    const entries = new Map<string, Record<string, unknown>>();
    for (let index = 0; index < record.length; index += 2)
      entries.set(record[index] as string, JSON.parse(record[index + 1] as string) as Record<string, unknown>);
    expect([...entries.keys()].sort()).toEqual(['a1', 'a2', 'b1']);
    expect(entries.get('a1')).toMatchObject({ queue: 'a', fetch: 'f2', process: 'host:7', payload: payload('a1') });
    expect(await redis().call('HGET', target.index, 'w1')).toBe('tok-1');
  });

  it('writes the index only when it does not name this drain-init already: not a write per fetch', async () => {
    await redis().call('LPUSH', 'queue:a', payload('a1'), payload('a2'), payload('a3'));
    await redis().call('HSET', target.index, 'w1', 'tok-0');
    const hsets = async (): Promise<number> =>
      Number(/^cmdstat_hset:calls=(\d+)/m.exec(await redis().command('INFO', 'commandstats'))?.[1] ?? 0);
    await redis().call('CONFIG', 'RESETSTAT');
    await fetch('f1', 'a');
    expect(await redis().call('HGET', target.index, 'w1')).toBe('tok-1');
    expect(await hsets()).toBe(2);
    await fetch('f2', 'a');
    await fetch('f3', 'a');
    expect(await hsets()).toBe(4);
  });

  it('takes nothing when a key of its own has another type, or another drain-init owns the record', async () => {
    await redis().call('LPUSH', 'queue:a', payload('a1'));
    await redis().call('SET', target.record, 'not a hash');
    expect(await fetch('f1', 'a')).toEqual({ kind: 'broken', key: target.record, type: 'string' });
    await redis().call('DEL', target.record);
    await redis().call('HSET', target.instance, 'owner', 'tok-2');
    expect(await fetch('f2', 'a')).toEqual({ kind: 'not-owner', key: target.instance, owner: 'tok-2' });
    expect(await redis().call('LLEN', 'queue:a')).toBe(1);
    // The index is met only after the job is taken and recorded: both are undone, the queue as it was.
    await redis().call('DEL', target.instance);
    await redis().call('LPUSH', 'queue:a', payload('a2'));
    await redis().call('SADD', target.index, 'w1');
    expect(await fetch('f3', 'a')).toEqual({ kind: 'broken', key: target.index, type: 'set' });
    expect(await redis().call('LRANGE', 'queue:a', 0, -1)).toEqual([payload('a2'), payload('a1')]);
    expect(await redis().call('EXISTS', target.record)).toBe(0);
  });

  it('answers the error and takes nothing when Redis refuses a write to the record', async () => {
    await redis().call('LPUSH', 'queue:a', payload('a1'), payload('a2'));
    await redis().call('ACL', 'SETUSER', 'no-hset', 'on', 'nopass', '~*', '+@all', '-hset');
    const refused = new Redis(redis().url.replace('redis://', 'redis://no-hset:x@'));
    try {
      await expect(fetch('f1', 'a', refused)).rejects.toThrow("The user executing the script can't run this command");
    } finally {
      refused.disconnect();
      await redis().call('ACL', 'DELUSER', 'no-hset');
    }
    expect(await redis().call('LRANGE', 'queue:a', 0, -1)).toEqual([payload('a2'), payload('a1')]);
    expect(await redis().call('EXISTS', target.record)).toBe(0);
  });
});

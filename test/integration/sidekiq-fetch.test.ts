// The reliable fetch script and drain-init's own connection for fetches, against a real redis-server:
// several fetches in one run, each served as BRPOP would serve it and recorded in the same step; the
// fetches that arrive while a run is on its way go together in the next.
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/lib/clock.js';
import { parseRedisUrl } from '../../src/redis/url.js';
import { connectFetches } from '../../src/sidekiq/fetch-connection.js';
import {
  FETCH_SCRIPT,
  fetchCall,
  parseFetchReply,
  type FetchRequest,
  type FetchTarget,
} from '../../src/sidekiq/fetch.js';
import { sidekiqKeys } from '../../src/sidekiq/keys.js';
import { captureLogger } from '../helpers/fake.js';
import { eventually } from '../helpers/pid1.js';
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
const request = (fetchId: string, ...queues: string[]): FetchRequest => ({
  fetch: { queueKeys: queues.map((queue) => `queue:${queue}`), timeoutMs: 2_000 },
  process: 'host:7',
  fetchId,
});
const payload = (jid: string): string => JSON.stringify({ class: 'NoopJob', args: [], jid, queue: 'q' });

const clients: { close(): void }[] = [];
afterEach(() => {
  for (const client of clients.splice(0)) client.close();
});

async function runScript(requests: FetchRequest[]): Promise<ReturnType<typeof parseFetchReply>> {
  const client = new Redis(redis().url);
  clients.push({ close: () => client.disconnect() });
  const { keys, args } = fetchCall(target, requests);
  return parseFetchReply(await FETCH_SCRIPT.runBuffers(client, keys, args), requests.length);
}

async function scriptRuns(): Promise<number> {
  const stats = await redis().command('INFO', 'commandstats');
  return [...stats.matchAll(/^cmdstat_(?:evalsha|eval):calls=(\d+)/gm)].reduce(
    (sum, [, calls]) => sum + Number(calls),
    0,
  );
}

describe('the fetch script on a real Redis', () => {
  it("serves several fetches in order from the first non-empty of each one's queues, and records each job", async () => {
    // RPUSH: the first pushed is the next BRPOP takes last; LPUSH as Sidekiq does.
    await redis().call('LPUSH', 'queue:a', payload('a1'), payload('a2'));
    await redis().call('LPUSH', 'queue:b', payload('b1'));
    const results = await runScript([
      request('f1', 'b', 'a'),
      request('f2', 'b', 'a'),
      request('f3', 'c'),
      request('f4', 'a'),
    ]);
    expect(
      results.map((result) => (result.kind === 'job' ? `${result.queueKey.toString()} ${result.jid}` : result.kind)),
    ).toEqual(['queue:b b1', 'queue:a a1', 'empty', 'queue:a a2']);
    const record = (await redis().call('HGETALL', target.record)) as string[];
    const entries = new Map<string, { queue: string; fetch: string; process: string; payload: string }>();
    for (let index = 0; index < record.length; index += 2)
      entries.set(record[index] as string, JSON.parse(record[index + 1] as string));
    expect([...entries.keys()].sort()).toEqual(['a1', 'a2', 'b1']);
    expect(entries.get('a1')).toMatchObject({ queue: 'a', fetch: 'f2', process: 'host:7', payload: payload('a1') });
    expect(entries.get('a2')).toMatchObject({ queue: 'a', fetch: 'f4' });
    expect(await redis().call('HGET', target.index, 'w1')).toBe('tok-1');
    expect(await redis().call('LLEN', 'queue:a')).toBe(0);
  });

  it('takes nothing for any fetch of the run when a key of its own has another type', async () => {
    await redis().call('LPUSH', 'queue:a', payload('a1'), payload('a2'));
    await redis().call('SET', target.record, 'not a hash');
    const results = await runScript([request('f1', 'a'), request('f2', 'a')]);
    expect(results).toEqual([
      { kind: 'broken', key: target.record, type: 'string' },
      { kind: 'broken', key: target.record, type: 'string' },
    ]);
    expect(await redis().call('LLEN', 'queue:a')).toBe(2);
  });
});

describe("drain-init's own connection for fetches", () => {
  it('runs the fetches that arrive while a run is on its way together in the next: 6 fetches, 2 runs', async () => {
    const jids = ['j1', 'j2', 'j3', 'j4', 'j5', 'j6'];
    await redis().call('LPUSH', 'queue:a', ...jids.map(payload));
    const shared = connectFetches(
      parseRedisUrl(redis().url),
      'drain-init:test:fetches',
      systemClock,
      captureLogger().log,
    );
    clients.push(shared);
    await eventually(async () => shared.ready || undefined, 'the fetch connection ready', 5_000);
    // The script is loaded first, so that NOSCRIPT's second send does not count as a run.
    expect(await shared.fetch(target, request('warm', 'b'))).toEqual({ kind: 'empty' });
    await redis().call('CONFIG', 'RESETSTAT');
    const results = await Promise.all(jids.map((_, index) => shared.fetch(target, request(`f${index}`, 'a'))));
    expect(results.map((result) => (result.kind === 'job' ? result.jid : result.kind))).toEqual(jids);
    expect(await scriptRuns()).toBe(2);
    expect(await redis().call('HLEN', target.record)).toBe(6);
  });

  it('is not ready while Redis is away, and again once it is back', async () => {
    const shared = connectFetches(
      parseRedisUrl(redis().url),
      'drain-init:test:fetches',
      systemClock,
      captureLogger().log,
    );
    clients.push(shared);
    await eventually(async () => shared.ready || undefined, 'the fetch connection ready', 5_000);
    await redis().call('CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes');
    await eventually(async () => !shared.ready || undefined, 'the fetch connection lost', 5_000);
    await eventually(async () => shared.ready || undefined, 'the fetch connection ready', 5_000);
  });
});

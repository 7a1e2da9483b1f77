import { describe, expect, it } from 'vitest';
import { parseRedisUrl, withSentinel } from '../../src/redis/url.js';
import { planEndpoint, pointedAtEndpoint, workerUrlVariable } from '../../src/sidekiq/worker-url.js';

const REDIS = parseRedisUrl('redis://:secret@redis.internal:6380/2');
const wish = (env: Record<string, string>, sidekiq = true, wanted = true) => ({ wanted, sidekiq, redis: REDIS, env });

describe("the worker's Redis URL", () => {
  it('is in REDIS_URL, or in the variable REDIS_PROVIDER names, as Sidekiq reads it', () => {
    expect(workerUrlVariable({})).toBe('REDIS_URL');
    expect(workerUrlVariable({ REDIS_PROVIDER: 'REDISTOGO_URL' })).toBe('REDISTOGO_URL');
    expect(workerUrlVariable({ REDIS_PROVIDER: 'redis://not-a-name' })).toBe('REDIS_URL');
  });

  it('is pointed at the endpoint with its user, password, database and query kept', () => {
    expect(pointedAtEndpoint('redis://:secret@redis.internal:6380/2', 41234)).toBe('redis://:secret@127.0.0.1:41234/2');
    expect(pointedAtEndpoint('rediss://app:p%40ss@redis.internal:6380/2?ssl_cert_reqs=none', 41234)).toBe(
      'redis://app:p%40ss@127.0.0.1:41234/2?ssl_cert_reqs=none',
    );
  });

  it('is relayed when the worker is a Sidekiq on the same Redis as drain-init', () => {
    expect(planEndpoint(wish({ REDIS_URL: 'redis://:secret@REDIS.internal:6380/2' }))).toEqual({
      kind: 'relay',
      variable: 'REDIS_URL',
      workerUrl: 'redis://:secret@REDIS.internal:6380/2',
    });
    expect(planEndpoint(wish({ REDIS_PROVIDER: 'MY_URL', MY_URL: 'redis://redis.internal:6380/2' }))).toMatchObject({
      variable: 'MY_URL',
    });
  });

  it('is left alone, saying why where the user can mend it, otherwise', () => {
    expect(planEndpoint(wish({ REDIS_URL: 'redis://redis.internal:6380/2' }, false))).toEqual({ kind: 'none' });
    expect(planEndpoint(wish({ REDIS_URL: 'redis://redis.internal:6380/2' }, true, false))).toEqual({ kind: 'none' });
    expect(planEndpoint(wish({}))).toMatchObject({
      kind: 'none',
      reason: expect.stringContaining('REDIS_URL is not set'),
    });
    expect(planEndpoint(wish({ REDIS_URL: 'redis://other:6380/2' }))).toMatchObject({
      reason: expect.stringContaining('another Redis'),
    });
    expect(planEndpoint(wish({ REDIS_URL: 'redis://redis.internal:6380/3' }))).toMatchObject({
      reason: expect.stringContaining('another Redis'),
    });
    expect(planEndpoint(wish({ REDIS_URL: 'http://x' }))).toMatchObject({
      reason: expect.stringContaining('not a URL the endpoint relays'),
    });
    const sentinel = withSentinel(REDIS, { sentinels: [{ host: 's1', port: 26379 }], masterName: undefined });
    expect(
      planEndpoint({ ...wish({ REDIS_URL: 'redis://:secret@redis.internal:6380/2' }), redis: sentinel }),
    ).toMatchObject({ kind: 'none', reason: expect.stringContaining('does not follow a Sentinel failover') });
  });
});

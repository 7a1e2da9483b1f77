// Which keys changed, told by a real redis-server: a wait ends at a write to one of its keys, at once when
// one already holds a value, and keys nobody waits for are not followed (no notice per job of a long drain).
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/lib/clock.js';
import { watchKeys, type KeyChanges } from '../../src/redis/key-changes.js';
import { parseRedisUrl } from '../../src/redis/url.js';
import { captureLogger } from '../helpers/fake.js';
import { eventually } from '../helpers/pid1.js';
import { redisTestBed } from '../helpers/redis.js';

const redis = redisTestBed();
const watches: KeyChanges[] = [];
afterEach(() => {
  for (const watch of watches.splice(0)) watch.close();
});

async function liveWatch(): Promise<KeyChanges> {
  const watch = watchKeys(parseRedisUrl(redis().url), 'drain-init:test:queues', systemClock, captureLogger().log);
  watches.push(watch);
  await eventually(async () => watch.live || undefined, 'tracking on', 5_000);
  return watch;
}

async function trackingInfo(): Promise<{ keys: number; prefixes: number }> {
  const info = await redis().command('INFO', 'stats');
  const field = (name: string): number => Number(new RegExp(`^${name}:(\\d+)`, 'm').exec(info)?.[1]);
  return { keys: field('tracking_total_keys'), prefixes: field('tracking_total_prefixes') };
}

describe('key changes told by Redis', () => {
  it('ends a wait at the first write to one of its keys, within milliseconds', async () => {
    const watch = await liveWatch();
    const waiting = watch.wait(['queue:a', 'queue:b'], 5_000, new AbortController().signal);
    await eventually(async () => ((await trackingInfo()).keys === 2 ? true : undefined), 'the keys read', 5_000);
    const pushed = performance.now();
    await redis().call('LPUSH', 'queue:b', 'job');
    expect(await waiting).toBe('changed');
    expect(performance.now() - pushed).toBeLessThan(1_000);
  });

  it('ends a wait at once when one of its keys already holds a value', async () => {
    const watch = await liveWatch();
    await redis().call('LPUSH', 'queue:a', 'job');
    expect(await watch.wait(['queue:a'], 5_000, new AbortController().signal)).toBe('changed');
  });

  it('times out when nothing changes, and follows no key once nobody waits: a drain sends no notices', async () => {
    const watch = await liveWatch();
    expect(await watch.wait(['queue:a'], 200, new AbortController().signal)).toBe('timeout');
    await redis().call('LPUSH', 'queue:a', 'job');
    for (let job = 0; job < 100; job++) await redis().call('LPUSH', 'queue:a', `job ${job}`);
    expect(await trackingInfo()).toEqual({ keys: 0, prefixes: 0 });
  });
});

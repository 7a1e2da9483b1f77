import { describe, expect, it } from 'vitest';
import { COMMAND_TIMEOUT_MS, reconnectDelay, redisOptions } from '../../src/redis/connection.js';
import { parseRedisUrl, withSentinel } from '../../src/redis/url.js';

describe('redisOptions', () => {
  it('never queues or waits: no offline queue, no retries, a timeout on every command and connect', () => {
    const options = redisOptions(parseRedisUrl('redis://h:7000/4'), 'drain-init:w1');
    expect(options).toMatchObject({
      host: 'h',
      port: 7000,
      db: 4,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      connectionName: 'drain-init:w1',
    });
    expect(options.commandTimeout).toBeLessThanOrEqual(1_000);
    expect(options.connectTimeout).toBeLessThanOrEqual(1_000);
    expect(options.socketTimeout).toBeGreaterThan(COMMAND_TIMEOUT_MS);
    expect(options).not.toHaveProperty('tls');
    expect(options).not.toHaveProperty('password');
  });

  it('connects to a Unix socket by its path', () => {
    const options = redisOptions(parseRedisUrl('unix:///run/redis/redis.sock?db=2'), 'n');
    expect(options).toMatchObject({ path: '/run/redis/redis.sock', db: 2 });
    expect(options).not.toHaveProperty('host');
  });

  it('passes TLS and ACL credentials from a rediss:// URL', () => {
    expect(redisOptions(parseRedisUrl('rediss://app:pw@h'), 'n')).toMatchObject({
      tls: {},
      username: 'app',
      password: 'pw',
    });
  });

  it('asks the sentinels for the primary by name, follows its failover, and reconnects on READONLY', () => {
    const endpoint = withSentinel(parseRedisUrl('redis://:pw@mymaster/3'), {
      sentinels: [{ host: '10.0.0.1', port: 26379 }],
      masterName: undefined,
      password: 'sentinel-pw',
    });
    const options = redisOptions(endpoint, 'n');
    expect(options).toMatchObject({
      sentinels: [{ host: '10.0.0.1', port: 26379 }],
      name: 'mymaster',
      role: 'master',
      sentinelPassword: 'sentinel-pw',
      failoverDetector: true,
      db: 3,
      password: 'pw',
      enableOfflineQueue: false,
    });
    expect(options).not.toHaveProperty('host');
    const reconnect = options.reconnectOnError;
    expect(reconnect?.(new Error("READONLY You can't write against a read only replica."))).toBe(true);
    expect(reconnect?.(new Error('OOM command not allowed'))).toBe(false);
  });

  it('backs off from 100 ms doubling to a 2 s cap, and never gives up', () => {
    expect([1, 2, 3, 4, 5, 6, 50].map(reconnectDelay)).toEqual([100, 200, 400, 800, 1600, 2000, 2000]);
  });
});

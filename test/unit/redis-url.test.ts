import { describe, expect, it } from 'vitest';
import {
  describeEndpoint,
  parseRedisUrl,
  parseSentinelAddress,
  redactRedisUrl,
  withSentinel,
} from '../../src/redis/url.js';

describe('parseRedisUrl', () => {
  it('defaults the port to 6379 and the database to 0', () => {
    expect(parseRedisUrl('redis://cache')).toEqual({ host: 'cache', port: 6379, db: 0, tls: false });
  });

  it('reads the database index, TLS, username and password', () => {
    expect(parseRedisUrl('rediss://worker:s3cr%40t@cache.internal:6380/1')).toEqual({
      host: 'cache.internal',
      port: 6380,
      db: 1,
      tls: true,
      username: 'worker',
      password: 's3cr@t',
    });
  });

  it('reads a lone user part as the password, as Sidekiq does', () => {
    expect(parseRedisUrl('redis://:only-password@h').password).toBe('only-password');
    expect(parseRedisUrl('redis://legacy-password@h')).toEqual({
      host: 'h',
      port: 6379,
      db: 0,
      tls: false,
      password: 'legacy-password',
    });
  });

  it('reads a Unix socket, its database from ?db=N, and a database from ?db=N where the path has none', () => {
    expect(parseRedisUrl('unix:///var/run/redis/redis.sock?db=2')).toEqual({
      host: 'localhost',
      port: 6379,
      socket: '/var/run/redis/redis.sock',
      db: 2,
      tls: false,
    });
    expect(parseRedisUrl('redis://h?db=4').db).toBe(4);
    expect(parseRedisUrl('redis://h/1?db=4').db).toBe(1);
    expect(describeEndpoint(parseRedisUrl('unix:/tmp/r.sock?db=1'))).toBe('unix:///tmp/r.sock?db=1');
    expect(() => parseRedisUrl('unix://host/tmp/r.sock')).toThrow(/names a path, not a host/);
    expect(() => parseRedisUrl('unix://')).toThrow(/no socket path/);
    expect(() => parseRedisUrl('unix:///tmp/r.sock?db=x')).toThrow(/db parameter/);
  });

  it('takes IPv6 hosts without brackets', () => {
    expect(parseRedisUrl('redis://[::1]:7000/').host).toBe('::1');
  });

  it('rejects other schemes, a missing host, port 0 and a path that is no database index', () => {
    expect(() => parseRedisUrl('http://cache')).toThrow(/expected redis:/);
    expect(() => parseRedisUrl('cache:6379')).toThrow(/expected redis:/);
    expect(() => parseRedisUrl('redis://')).toThrow(/no host/);
    expect(() => parseRedisUrl('redis://h:0')).toThrow(/port/);
    expect(() => parseRedisUrl('redis://h/one')).toThrow(/database index/);
    expect(() => parseRedisUrl('redis://u:%zz@h')).toThrow(/malformed %-escape/);
  });
});

describe('redactRedisUrl', () => {
  it('keeps the user, hides the password and spells out port and database', () => {
    expect(redactRedisUrl('redis://user:pass@host:6379/2')).toBe('redis://user:***@host:6379/2');
    expect(redactRedisUrl('rediss://:pass@host')).toBe('rediss://:***@host:6379/0');
    expect(redactRedisUrl('redis://pass@host')).toBe('redis://:***@host:6379/0');
    expect(redactRedisUrl('redis://host:6380/3')).toBe('redis://host:6380/3');
    expect(redactRedisUrl('redis://[::1]:6380')).toBe('redis://[::1]:6380/0');
  });

  it('hides everything before the last @ of text that is no URL', () => {
    expect(redactRedisUrl('redis://u:p@ss/w@host:port')).toBe('redis://***@host:port');
    expect(redactRedisUrl('u:pass@host')).toBe('***@host');
    expect(redactRedisUrl('not a url')).toBe('not a url');
  });
});

describe('Redis Sentinel', () => {
  it('reads a sentinel address, port 26379 unless given, IPv6 in brackets', () => {
    expect(parseSentinelAddress('s1')).toEqual({ host: 's1', port: 26379 });
    expect(parseSentinelAddress(' 10.0.0.2:26380 ')).toEqual({ host: '10.0.0.2', port: 26380 });
    expect(parseSentinelAddress('[fd00::1]:5000')).toEqual({ host: 'fd00::1', port: 5000 });
    for (const bad of ['', 'h:0', 'h:70000', 'h:x', 'a b', 'fd00::1', 'redis://h:26379'])
      expect(() => parseSentinelAddress(bad), bad).toThrow('expected a sentinel address');
  });

  it("names the primary by the master name, else by the URL's host, with the URL's database and credentials", () => {
    const sentinels = [{ host: 's1', port: 26379 }];
    const url = parseRedisUrl('rediss://:pw@mymaster/2');
    expect(withSentinel(url, { sentinels, masterName: undefined })).toEqual({
      ...url,
      sentinel: { sentinels, masterName: 'mymaster' },
    });
    expect(withSentinel(undefined, { sentinels, masterName: 'jobs', password: 'sp' })).toEqual({
      host: 'jobs',
      port: 6379,
      db: 0,
      tls: false,
      sentinel: { sentinels, masterName: 'jobs', password: 'sp' },
    });
    const described = describeEndpoint(
      withSentinel(url, { sentinels: [...sentinels, { host: '::1', port: 1 }], masterName: 'm', password: 'sp' }),
    );
    expect(described).toBe('rediss://:***@m/2 via sentinels s1:26379,[::1]:1');
  });
});

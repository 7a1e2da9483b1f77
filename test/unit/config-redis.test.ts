import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig, type Config } from '../../src/config/parse.js';
import { describeEndpoint } from '../../src/redis/url.js';

function config(argv: readonly string[], env: Record<string, string> = {}): Config {
  const parsed = parseConfig([...argv, '--', 'sidekiq'], env);
  if (parsed.kind !== 'run') throw new Error(`expected a run, got ${parsed.kind}`);
  return parsed.config;
}

/** The Redis URL drain-init parsed, as logs show it. */
function redisOf(parsed: Config): string | undefined {
  return parsed.redis === undefined ? undefined : describeEndpoint(parsed.redis);
}

function failure(argv: readonly string[], env: Record<string, string> = {}): string {
  try {
    config(argv, env);
  } catch (error) {
    if (error instanceof ConfigError) return error.message;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('Redis options', () => {
  it('turns Redis off and uses the defaults when nothing is set', () => {
    const parsed = config([]);
    expect(parsed.redis).toBeUndefined();
    // Unset: the default, unique per container, is made at start (record/instance-id.ts).
    expect(parsed.instanceId).toBeUndefined();
    expect(parsed.redisPrefix).toBe('drain-init');
    expect(parsed.heartbeatIntervalMs).toBe(10_000);
    expect(parsed.heartbeatTtlMs).toBe(30_000);
  });

  it("reads Sidekiq's REDIS_URL when neither the flag nor DRAIN_INIT_REDIS_URL is set", () => {
    expect(redisOf(config([], { REDIS_URL: 'redis://r:6379/2' }))).toBe('redis://r:6379/2');
    expect(redisOf(config([], { REDIS_URL: 'redis://r', DRAIN_INIT_REDIS_URL: 'redis://ours' }))).toBe(
      'redis://ours:6379/0',
    );
    expect(
      redisOf(
        config(['--redis-url', 'rediss://flag'], { REDIS_URL: 'redis://r', DRAIN_INIT_REDIS_URL: 'redis://ours' }),
      ),
    ).toBe('rediss://flag:6379/0');
    expect(config([], { REDIS_URL: '' }).redis).toBeUndefined();
    expect(config([], { REDIS_URL: 'redis://r', DRAIN_INIT_REDIS_URL: 'none' }).redis).toBeUndefined();
    expect(config(['--redis-url', 'NONE'], { REDIS_URL: 'redis://r' }).redis).toBeUndefined();
  });

  it('takes the instance id from the flag or DRAIN_INIT_INSTANCE_ID; POD_NAME goes into the default', () => {
    expect(config([], { POD_NAME: 'worker-7f9c' }).instanceId).toBeUndefined();
    expect(config([], { POD_NAME: 'pod', DRAIN_INIT_INSTANCE_ID: 'env' }).instanceId).toBe('env');
    expect(config(['--instance-id=flag'], { DRAIN_INIT_INSTANCE_ID: 'env' }).instanceId).toBe('flag');
  });

  it('takes the prefix, interval and TTL, the TTL defaulting to three intervals', () => {
    const parsed = config(['--redis-prefix', 'myapp:di', '--heartbeat-interval', '2s']);
    expect(parsed.redisPrefix).toBe('myapp:di');
    expect(parsed.heartbeatIntervalMs).toBe(2_000);
    expect(parsed.heartbeatTtlMs).toBe(6_000);
    expect(config([], { DRAIN_INIT_HEARTBEAT_INTERVAL: '500ms', DRAIN_INIT_HEARTBEAT_TTL: '1m' }).heartbeatTtlMs).toBe(
      60_000,
    );
  });

  it('rejects a TTL not longer than the interval, naming where it came from', () => {
    expect(failure(['--heartbeat-ttl', '5s'])).toBe(
      '--heartbeat-ttl (5s) must be longer than the heartbeat interval (10s)',
    );
    expect(failure(['--heartbeat-interval', '1s'], { DRAIN_INIT_HEARTBEAT_TTL: '1s' })).toBe(
      'DRAIN_INIT_HEARTBEAT_TTL (1s) must be longer than the heartbeat interval (1s)',
    );
  });

  it('rejects a zero interval and names with spaces', () => {
    expect(failure(['--heartbeat-interval', '0'])).toBe(
      "invalid value '0' for --heartbeat-interval: must be at least 1ms",
    );
    expect(failure(['--instance-id', 'a b'])).toMatch(
      /^invalid value 'a b' for --instance-id: expected a non-empty name/,
    );
    expect(failure([], { DRAIN_INIT_REDIS_PREFIX: ' ' })).toMatch(
      /for DRAIN_INIT_REDIS_PREFIX: expected a non-empty name/,
    );
  });

  it("reads Sidekiq's redis-namespace without its colon", () => {
    expect(config([]).sidekiqNamespace).toBeUndefined();
    expect(config(['--sidekiq-namespace', 'myapp']).sidekiqNamespace).toBe('myapp');
    expect(config([], { DRAIN_INIT_SIDEKIQ_NAMESPACE: 'legacy' }).sidekiqNamespace).toBe('legacy');
    expect(failure(['--sidekiq-namespace', 'myapp:'])).toBe(
      "invalid value 'myapp:' for --sidekiq-namespace: give the namespace without its trailing colon",
    );
  });

  it('rejects a bad --redis-url or DRAIN_INIT_REDIS_URL on one line, without its password or raw control characters', () => {
    const wrongScheme = failure([], { DRAIN_INIT_REDIS_URL: 'http://user:hunter2secret@host:6379' });
    expect(wrongScheme).toBe(
      "invalid value 'http://***@host:6379' for DRAIN_INIT_REDIS_URL: expected redis://[[user]:password@]host[:port][/db], rediss://... for TLS, or unix:///path[?db=N]",
    );
    const badDb = failure(['--redis-url', 'redis://:hunter2secret@host/cache']);
    expect(badDb).toBe(
      "invalid value 'redis://***@host/cache' for --redis-url: the path must be a database index such as /1",
    );
    const unparseable = failure([], { DRAIN_INIT_REDIS_URL: 'redis://u:hunter2secret@host:notaport' });
    expect(unparseable).toMatch(
      /^invalid value 'redis:\/\/\*\*\*@host:notaport' for DRAIN_INIT_REDIS_URL: expected redis:/,
    );
    const control = failure(['--redis-url', 'redis://h/1\n{"level":50}\u001b[2J']);
    expect(control).toBe(
      'invalid value \'redis://h/1\\n{"level":50}\\u001b[2J\' for --redis-url: the path must be a database index such as /1',
    );
    expect(failure(['--grace-period', '5\ts'])).toMatch(/^invalid value '5\\ts' for --grace-period/);
    for (const message of [wrongScheme, badDb, unparseable, control]) {
      expect(message).not.toContain('hunter2');
      expect(message).not.toMatch(/\p{Cc}/u);
    }
  });

  it("turns drain-init's Redis off with one notice when the worker's REDIS_URL is one it cannot use, and starts the worker", () => {
    for (const url of ['redis://:hunter2secret@host:6379/abc', 'http://host', 'redis://', 'unix://host/x.sock']) {
      const parsed = config([], { REDIS_URL: url });
      expect(parsed.redis, url).toBeUndefined();
      expect(parsed.notices, url).toHaveLength(1);
      expect(parsed.notices[0], url).toMatch(
        /^invalid value '.*' for REDIS_URL: .*; the variable is the worker's: drain-init's Redis features are off and the worker starts as usual/,
      );
      expect(parsed.notices[0], url).not.toContain('hunter2');
    }
    expect(config([], { REDIS_URL: 'redis://h/2' }).notices).toEqual([]);
  });

  it('reads Unix sockets with their database as Sidekiq does', () => {
    expect(redisOf(config([], { REDIS_URL: 'unix:///run/redis/redis.sock?db=3' }))).toBe(
      'unix:///run/redis/redis.sock?db=3',
    );
    expect(config([], { REDIS_URL: 'unix:///tmp/r.sock' }).redis).toMatchObject({ socket: '/tmp/r.sock', db: 0 });
    expect(redisOf(config(['--redis-url', 'redis://h:7/0?db=5']))).toBe('redis://h:7/0');
    expect(redisOf(config(['--redis-url', 'redis://h:7?db=5']))).toBe('redis://h:7/5');
  });

  it('warns once that --stop-signal KILL gives the worker no chance to finish', () => {
    expect(config(['--stop-signal', 'KILL']).notices).toEqual([
      "--stop-signal KILL: the worker is killed at the stop's first step and gets no chance to finish its jobs",
    ]);
    expect(config([], { DRAIN_INIT_STOP_SIGNAL: 'SIGKILL' }).notices[0]).toMatch(/^DRAIN_INIT_STOP_SIGNAL KILL:/);
    expect(config(['--stop-signal', 'TERM']).notices).toEqual([]);
  });

  it('reads the sentinels from flags or env, the master name from its option or the URL', () => {
    const fromEnv = config([], {
      REDIS_URL: 'redis://:pw@mymaster/1',
      DRAIN_INIT_REDIS_SENTINELS: '10.0.0.1, 10.0.0.2:26380',
      DRAIN_INIT_REDIS_SENTINEL_PASSWORD: 'sentinel secret',
    });
    expect(fromEnv.redis?.sentinel).toEqual({
      sentinels: [
        { host: '10.0.0.1', port: 26379 },
        { host: '10.0.0.2', port: 26380 },
      ],
      masterName: 'mymaster',
      password: 'sentinel secret',
    });
    expect(redisOf(fromEnv)).toBe('redis://:***@mymaster/1 via sentinels 10.0.0.1:26379,10.0.0.2:26380');
    const fromFlags = config(['--redis-sentinels', 's1', '--redis-sentinels', 's2:1', '--redis-master-name', 'jobs']);
    expect(fromFlags.redis).toMatchObject({ host: 'jobs', sentinel: { masterName: 'jobs' } });
    expect(fromFlags.probePort).toBe(7433);
    expect(config(['--redis-url', 'none', '--redis-sentinels', 's1']).redis).toBeUndefined();
  });

  it('refuses a master name without sentinels, and sentinels without a name for the primary', () => {
    expect(failure(['--redis-master-name', 'm'], { REDIS_URL: 'redis://h' })).toBe(
      '--redis-master-name needs the sentinels: --redis-sentinels HOST:PORT',
    );
    expect(failure([], { DRAIN_INIT_REDIS_SENTINELS: 's1' })).toBe(
      "DRAIN_INIT_REDIS_SENTINELS needs the primary's name: --redis-master-name, or a Redis URL whose host is it (redis://mymaster)",
    );
    expect(failure(['--redis-sentinels', 'h:99999'])).toMatch(
      /^invalid value 'h:99999' for --redis-sentinels: expected a sentinel address/,
    );
  });
});

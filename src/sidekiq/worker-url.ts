// The worker's own Redis URL, as Sidekiq finds it in its environment, and that URL pointed at drain-init's
// Redis endpoint: the only variable drain-init changes for the worker. No I/O.
import { parseRedisUrl, type RedisEndpoint } from '../redis/url.js';

/** Sidekiq's rule: the variable REDIS_PROVIDER names, else REDIS_URL. */
export function workerUrlVariable(env: Readonly<Record<string, string | undefined>>): string {
  const provider = env.REDIS_PROVIDER?.trim();
  return provider !== undefined && /^[A-Za-z_][A-Za-z0-9_]*$/.test(provider) ? provider : 'REDIS_URL';
}

export type EndpointPlan =
  | { readonly kind: 'relay'; readonly variable: string; readonly workerUrl: string }
  /** `reason` is logged: the user expected the endpoint and can mend what stops it. */
  | { readonly kind: 'none'; readonly reason?: string };

export interface EndpointWish {
  /** --redis-endpoint and --recovery are both on. */
  readonly wanted: boolean;
  /** The worker is stopped as a Sidekiq (its command line, or --preset sidekiq). */
  readonly sidekiq: boolean;
  /** drain-init's own Redis: the worker's must be the same, or its jobs would be recorded where recovery does not look. */
  readonly redis: RedisEndpoint;
  readonly env: Readonly<Record<string, string | undefined>>;
}

export function planEndpoint(wish: EndpointWish): EndpointPlan {
  if (!wish.wanted || !wish.sidekiq) return { kind: 'none' };
  const variable = workerUrlVariable(wish.env);
  const workerUrl = wish.env[variable]?.trim() ?? '';
  const fallback = 'the heartbeat mirror records its jobs instead';
  if (workerUrl === '')
    return {
      kind: 'none',
      reason: `the worker's ${variable} is not set, so drain-init cannot point it at its endpoint: ${fallback}`,
    };
  let worker: RedisEndpoint;
  try {
    worker = parseRedisUrl(workerUrl);
  } catch (error) {
    return {
      kind: 'none',
      reason: `the worker's ${variable} is not a URL the endpoint relays (${(error as Error).message}): ${fallback}`,
    };
  }
  if (!sameRedis(worker, wish.redis)) {
    return { kind: 'none', reason: `the worker's ${variable} names another Redis than drain-init's: ${fallback}` };
  }
  // The relay connects to host:port; with Sentinel the primary is only known by asking the sentinels.
  if (wish.redis.socket !== undefined)
    return { kind: 'none', reason: `the endpoint relays to Redis over TCP, not a Unix socket: ${fallback}` };
  if (wish.redis.sentinel !== undefined)
    return { kind: 'none', reason: `the endpoint does not follow a Sentinel failover: ${fallback}` };
  return { kind: 'relay', variable, workerUrl };
}

function sameRedis(a: RedisEndpoint, b: RedisEndpoint): boolean {
  return (
    a.host.toLowerCase() === b.host.toLowerCase() &&
    a.port === b.port &&
    a.socket === b.socket &&
    a.db === b.db &&
    a.tls === b.tls
  );
}

/**
 * The worker's URL with its host and port those of the endpoint on loopback, its user, password, database and
 * query kept; `redis://`, since drain-init speaks TLS to Redis itself.
 */
export function pointedAtEndpoint(workerUrl: string, port: number): string {
  const url = new URL(workerUrl.trim());
  url.protocol = 'redis:';
  url.hostname = '127.0.0.1';
  url.port = String(port);
  return url.toString();
}

// A lock over one job record, so exactly one instance recovers it: SET NX PX with a random token,
// released by compare-and-delete.
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { LuaScript } from '../redis/lua-script.js';
import releaseSource from './release-lock.lua';

const release = new LuaScript(releaseSource);

/**
 * The token, or undefined when another holds the lock. A key of another type would look held forever
 * (SET NX does not complain): it rejects as Redis does for a command on it, with WRONGTYPE.
 */
export async function acquireLock(redis: Redis, key: string, ttlMs: number): Promise<string | undefined> {
  const token = randomBytes(16).toString('hex');
  const reply = await redis.set(key, token, 'PX', ttlMs, 'NX');
  if (reply === 'OK') return token;
  const type = await redis.type(key);
  if (type !== 'string' && type !== 'none')
    throw new Error(`WRONGTYPE the recovery lock ${key} is a ${type}, not a string`);
  return undefined;
}

/** False when the lock had expired (and may be another's now). */
export async function releaseLock(redis: Redis, key: string, token: string): Promise<boolean> {
  return (await release.run(redis, [key], [token])) === 1;
}

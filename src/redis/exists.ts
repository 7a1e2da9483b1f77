import type { Redis } from 'ioredis';

/** Whether each key exists, in one pipeline of EXISTS; rejects with the first error. */
export async function keysExist(redis: Redis, keys: readonly string[]): Promise<boolean[]> {
  if (keys.length === 0) return [];
  const pipeline = redis.pipeline();
  for (const key of keys) pipeline.exists(key);
  const replies = await pipeline.exec();
  if (replies === null) throw new Error('Redis pipeline aborted');
  return keys.map((_, index) => {
    const [error, count] = replies[index] ?? [new Error('no reply'), 0];
    if (error !== null) throw error;
    return count === 1;
  });
}

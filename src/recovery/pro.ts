// Sidekiq Pro's super_fetch recovers the jobs of dead processes itself, so drain-init must not as well.
// Its traces: the `super_processes` set and the private lists `queue:sq|<identity>|<queue>`.
import type { Redis } from 'ioredis';
import { keysExist } from '../redis/exists.js';
import type { SidekiqKeys } from '../sidekiq/keys.js';
import type { SidekiqProcess } from '../sidekiq/parse.js';

/** The keys whose existence betrays super_fetch: one per process and queue, without KEYS or SCAN. */
function superFetchKeys(sidekiq: SidekiqKeys, processes: readonly SidekiqProcess[]): string[] {
  return [
    `${sidekiq.prefix}super_processes`,
    ...processes.flatMap((process) => process.queues.map((queue) => sidekiq.queue(`sq|${process.identity}|${queue}`))),
  ];
}

/** The super_fetch keys found, empty when Sidekiq Pro's reliable fetch is not in use. */
export async function findSuperFetch(
  redis: Redis,
  sidekiq: SidekiqKeys,
  processes: readonly SidekiqProcess[],
): Promise<string[]> {
  const keys = superFetchKeys(sidekiq, processes);
  const found = await keysExist(redis, keys);
  return keys.filter((_, index) => found[index] === true);
}

// Reads every Sidekiq process and its in-flight jobs from Redis: SMEMBERS processes, then one
// pipeline of three HGETALLs per member, bounded by a cap on the members read.
import type { Redis } from 'ioredis';
import { SIDEKIQ_KEYS, type SidekiqKeys } from './keys.js';
import { parseSnapshot, type HashFields, type IdentityHashes, type SidekiqSnapshot } from './parse.js';

export type { SidekiqSnapshot } from './parse.js';

/** 1,500 HGETALLs in one pipeline at most. */
export const MAX_IDENTITIES = 500;

export interface ReadOptions {
  /** Sidekiq's keys (under its redis-namespace, if any); without a namespace by default. */
  readonly keys?: SidekiqKeys;
  /** Under the cap, identities of this host (`<hostname>:pid:nonce`) are read first. */
  readonly hostname?: string | undefined;
  /** Read only the identities of `hostname`. */
  readonly onlyHostname?: boolean;
  readonly maxIdentities?: number;
}

/** Rejects only when Redis does (connection lost, timeout); a broken key is a warning. */
export async function readSidekiq(redis: Redis, options: ReadOptions = {}): Promise<SidekiqSnapshot> {
  const { hostname, keys = SIDEKIQ_KEYS } = options;
  const members = await redis.smembers(keys.processes);
  const candidates =
    options.onlyHostname === true && hostname !== undefined
      ? members.filter((member) => member.startsWith(`${hostname}:`))
      : members;
  const picked = pickIdentities(candidates, hostname, options.maxIdentities ?? MAX_IDENTITIES);
  const snapshot = await readIdentities(redis, picked.identities, keys);
  return { ...snapshot, warnings: [...picked.warnings, ...snapshot.warnings] };
}

/** The hashes of identities already known, without listing `processes`: one pipeline of three HGETALLs each. */
export async function readIdentities(
  redis: Redis,
  identities: readonly string[],
  keys: SidekiqKeys = SIDEKIQ_KEYS,
): Promise<SidekiqSnapshot> {
  const read = await readHashes(redis, keys, identities);
  const snapshot = parseSnapshot(read.entries);
  return { ...snapshot, warnings: [...read.warnings, ...snapshot.warnings] };
}

/** Sorted, this host's first, at most `max`; a warning line when some are left out. */
export function pickIdentities(
  members: readonly string[],
  hostname: string | undefined,
  max: number,
): { identities: string[]; warnings: string[] } {
  const own = (identity: string): boolean => hostname !== undefined && identity.startsWith(`${hostname}:`);
  const sorted = [...members].sort((a, b) => Number(own(b)) - Number(own(a)) || (a < b ? -1 : a > b ? 1 : 0));
  if (sorted.length <= max) return { identities: sorted, warnings: [] };
  const order = hostname === undefined ? 'in name order' : `this host's first`;
  return {
    identities: sorted.slice(0, max),
    warnings: [`Sidekiq processes has ${sorted.length} members: read only ${max}, ${order}`],
  };
}

async function readHashes(
  redis: Redis,
  sidekiq: SidekiqKeys,
  identities: readonly string[],
): Promise<{ entries: IdentityHashes[]; warnings: string[] }> {
  if (identities.length === 0) return { entries: [], warnings: [] };
  const keys = identities.map((identity) => ({
    identity,
    process: sidekiq.process(identity),
    work: sidekiq.work(identity),
    workers: sidekiq.workers(identity),
  }));
  const pipeline = redis.pipeline();
  for (const key of keys) pipeline.hgetall(key.process).hgetall(key.work).hgetall(key.workers);
  const replies = await pipeline.exec();
  if (replies === null) throw new Error('Redis pipeline aborted');
  const warnings: string[] = [];
  let next = 0;
  // Takes the replies in the order the commands were queued.
  const hash = (key: string): HashFields => {
    const [error, value] = replies[next++] ?? [new Error('no reply'), undefined];
    if (error !== null) warnings.push(`Sidekiq key ${JSON.stringify(key)} skipped: ${error.message}`);
    else if (isHashReply(value)) return value;
    else warnings.push(`Sidekiq key ${JSON.stringify(key)} skipped: not a hash`);
    return {};
  };
  const entries = keys.map((key) => ({
    identity: key.identity,
    process: hash(key.process),
    work: hash(key.work),
    workers: hash(key.workers),
  }));
  return { entries, warnings };
}

function isHashReply(value: unknown): value is HashFields {
  return (
    typeof value === 'object' && value !== null && Object.values(value).every((field) => typeof field === 'string')
  );
}

// Reads every Sidekiq process and its in-flight jobs from Redis: SSCAN of processes, then one script run
// that reads the three hashes of each member, bounded by caps on the members, fields and value lengths read.
import type { Redis } from 'ioredis';
import { LuaScript } from '../redis/lua-script.js';
import { SIDEKIQ_KEYS, type SidekiqKeys } from './keys.js';
import { parseSnapshot, type HashFields, type IdentityHashes, type SidekiqSnapshot } from './parse.js';
import readHashesSource from './read-hashes.lua';

const READ_HASHES = new LuaScript(readHashesSource);

export type { SidekiqSnapshot } from './parse.js';

/** The hashes of 500 members, 1,500 keys, in one script run at most. */
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

/** Members of `processes` looked at per SSCAN step, and the most steps of one listing. */
const SCAN_COUNT = 1_000;
const MAX_SCAN_STEPS = 100;

/** Rejects only when Redis does (connection lost, timeout); a broken key is a warning. */
export async function readSidekiq(redis: Redis, options: ReadOptions = {}): Promise<SidekiqSnapshot> {
  const { hostname, keys = SIDEKIQ_KEYS } = options;
  const only = options.onlyHostname === true && hostname !== undefined ? hostname : undefined;
  const listed = await listProcesses(redis, keys.processes, only);
  const candidates = only === undefined ? listed.members : listed.members.filter((m) => m.startsWith(`${only}:`));
  const picked = pickIdentities(candidates, hostname, options.maxIdentities ?? MAX_IDENTITIES);
  const snapshot = await readIdentities(redis, picked.identities, keys);
  return { ...snapshot, warnings: [...listed.warnings, ...picked.warnings, ...snapshot.warnings] };
}

/**
 * The members of `processes` (those of `hostname` only, when given), by SSCAN steps: a set of any size costs
 * at most MAX_SCAN_STEPS round trips of about SCAN_COUNT members each, and a warning when it was not walked whole.
 */
async function listProcesses(
  redis: Redis,
  key: string,
  hostname: string | undefined,
): Promise<{ members: string[]; warnings: string[] }> {
  const match = hostname === undefined ? '*' : `${hostname.replace(/[*?[\]\\]/g, '\\$&')}:*`;
  const members = new Set<string>();
  let cursor = '0';
  for (let step = 0; step < MAX_SCAN_STEPS; step++) {
    const [next, page] = await redis.sscan(key, cursor, 'MATCH', match, 'COUNT', SCAN_COUNT);
    for (const member of page) members.add(member);
    cursor = next;
    if (cursor === '0') return { members: [...members], warnings: [] };
  }
  return {
    members: [...members],
    warnings: [
      `Sidekiq key ${JSON.stringify(key)} is too large to list whole: ${MAX_SCAN_STEPS * SCAN_COUNT} members looked at, ${members.size} taken`,
    ],
  };
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

/** The longest hash value read: a Sidekiq job is far shorter; a longer value is named in a warning, never read. */
export const MAX_VALUE_BYTES = 1_048_576;
/** The most fields read of one hash: a process runs as many jobs as its concurrency, rarely over a few hundred. */
export const MAX_HASH_FIELDS = 1_000;

/** Every hash of the identities in one script run (read-hashes.lua), within the caps; a broken key is a warning. */
async function readHashes(
  redis: Redis,
  sidekiq: SidekiqKeys,
  identities: readonly string[],
): Promise<{ entries: IdentityHashes[]; warnings: string[] }> {
  if (identities.length === 0) return { entries: [], warnings: [] };
  const keys = identities.flatMap((identity) => [
    sidekiq.process(identity),
    sidekiq.work(identity),
    sidekiq.workers(identity),
  ]);
  const reply = await READ_HASHES.run(redis, keys, [String(MAX_VALUE_BYTES), String(MAX_HASH_FIELDS)]);
  const read = parseHashReads(keys, reply);
  const entries = identities.map((identity, index) => ({
    identity,
    process: read.hashes[3 * index] ?? {},
    work: read.hashes[3 * index + 1] ?? {},
    workers: read.hashes[3 * index + 2] ?? {},
  }));
  return { entries, warnings: read.warnings };
}

/** read-hashes.lua's reply, key by key: the fields read, and a warning for each key not read whole. */
export function parseHashReads(keys: readonly string[], reply: unknown): { hashes: HashFields[]; warnings: string[] } {
  if (!Array.isArray(reply) || reply.length !== keys.length) throw new Error('unexpected read-hashes reply');
  const warnings: string[] = [];
  const hashes = keys.map((key, index) => {
    const [kind, total, read, long] = reply[index] as unknown[];
    const shown = JSON.stringify(key);
    if (kind !== 'hash') {
      if (kind !== 'none') warnings.push(`Sidekiq key ${shown} skipped: it is a ${String(kind)}, not a hash`);
      return {};
    }
    if (!Array.isArray(read) || !Array.isArray(long)) throw new Error('unexpected read-hashes reply');
    const fields: Record<string, string> = {};
    for (let at = 0; at + 1 < read.length; at += 2) fields[String(read[at])] = String(read[at + 1]);
    const readCount = read.length / 2 + long.length / 2;
    if (typeof total === 'number' && total > readCount)
      warnings.push(`Sidekiq key ${shown} has ${total} fields: read only ${readCount}`);
    for (let at = 0; at + 1 < long.length; at += 2)
      warnings.push(
        `Sidekiq key ${shown} field ${JSON.stringify(String(long[at]))} skipped: its value is ${String(long[at + 1])} bytes, over the ${MAX_VALUE_BYTES}-byte cap`,
      );
    return fields;
  });
  return { hashes, warnings };
}

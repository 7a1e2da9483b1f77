// Every instance record has exactly one live owner. At start a drain-init claims its instance id with a
// token of its own start: a record owned by a live drain-init (its named Redis connection is there, or,
// where CLIENT LIST is refused, its beat moves within one of its heartbeat intervals) is never taken;
// the claimant takes the next free id (`id-2`, `id-3` ...), warns naming both, and leaves a note the owner
// logs. A record whose owner is dead (a restart after a kill, same id) is taken over at once.
import type { Redis } from 'ioredis';
import { sleep, type Clock } from '../lib/clock.js';
import type { Logger } from '../log/logger.js';
import { LuaScript } from '../redis/lua-script.js';
import claimSource from './claim.lua';
import { collisionNote, connectionName, recordKeys } from './schema.js';

const CLAIM_SCRIPT = new LuaScript(claimSource);
/** Ids tried, the requested one included, before giving up (one warning). */
export const MAX_IDS_TRIED = 20;
/** Where CLIENT LIST is refused: the owner's beat is watched for its interval and this much more. */
const BEAT_WAIT_SLACK_MS = 1_000;
/** The longest a claimant waits for an owner's beat, whatever interval the owner wrote. */
const MAX_BEAT_WAIT_MS = 60_000;

export interface ClaimRequest {
  readonly requestedId: string;
  readonly prefix: string;
  readonly token: string;
  readonly ttlMs: number;
  /** Written in a note to a live owner of the requested id. */
  readonly pid: number;
  readonly hostname: string;
}

/** Every id tried belongs to a live drain-init, or has a key of another type. */
export class NoInstanceIdError extends Error {}

export interface Claimed {
  readonly instanceId: string;
  /** The token of a dead owner whose record was taken over: its jobs are to be recovered now. */
  readonly tookOverFrom: string | undefined;
}

/** Another drain-init's hold on a record, as claim.lua tells it. */
export interface Holder {
  readonly owner: string;
  readonly lastBeat: string;
  readonly pid: string;
  readonly hostname: string;
  readonly beatEveryMs: number | undefined;
}

export type ClaimReply =
  { readonly kind: 'claimed'; readonly previous: string } | { readonly kind: 'held'; readonly holder: Holder };

export function parseClaimReply(reply: unknown): ClaimReply {
  if (Array.isArray(reply) && reply.every((item) => typeof item === 'string')) {
    const [kind, owner = '', lastBeat = '', pid = '', hostname = '', beatEvery = ''] = reply as string[];
    if (kind === 'claimed' && reply.length === 2) return { kind, previous: owner };
    if (kind === 'held' && reply.length === 6) {
      const beatEveryMs = /^\d+$/.test(beatEvery) ? Number(beatEvery) : undefined;
      return { kind, holder: { owner, lastBeat, pid, hostname, beatEveryMs } };
    }
  }
  throw new Error(`unexpected claim reply ${JSON.stringify(reply)}`);
}

/** The ids tried in turn: the requested one, then `id-2`, `id-3` ... */
export function candidateId(requestedId: string, attempt: number): string {
  return attempt === 0 ? requestedId : `${requestedId}-${attempt + 1}`;
}

/** Whether a CLIENT LIST reply shows a connection named for `token`. */
export function listsConnection(clientList: string, token: string): boolean {
  const name = `name=${connectionName(token)}`;
  return clientList.split('\n').some((line) => line.split(' ').includes(name));
}

/**
 * Claims the requested id or the first free one after it; rejects only when Redis does (the caller tries
 * again), or when every id tried is owned by a live drain-init.
 */
export async function claimInstanceId(
  redis: Redis,
  request: ClaimRequest,
  clock: Clock,
  log: Logger,
): Promise<Claimed> {
  for (let attempt = 0; attempt < MAX_IDS_TRIED; attempt++) {
    const instanceId = candidateId(request.requestedId, attempt);
    const key = recordKeys(request.prefix, instanceId).instance;
    let first: ClaimReply;
    try {
      first = parseClaimReply(await claim(redis, key, request, ''));
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith('WRONGTYPE')) throw error;
      const next = candidateId(request.requestedId, attempt + 1);
      log.warn({ key }, `the key ${key} has another type than drain-init's record: this one tries '${next}'`);
      continue;
    }
    if (first.kind === 'claimed') return { instanceId, tookOverFrom: first.previous || undefined };
    const { holder } = first;
    if (!(await ownerAlive(redis, key, holder, clock))) {
      const second = parseClaimReply(await claim(redis, key, request, holder.owner));
      if (second.kind === 'claimed') {
        log.info(
          { instanceId, previousOwner: { pid: holder.pid, hostname: holder.hostname } },
          "took over this instance id's record from a drain-init that is gone (a restart after a kill): its jobs are recovered now",
        );
        return { instanceId, tookOverFrom: holder.owner };
      }
    }
    const next = candidateId(request.requestedId, attempt + 1);
    log.warn(
      { instanceId, owner: { pid: holder.pid, hostname: holder.hostname }, instead: next },
      `instance id '${instanceId}' belongs to a live drain-init (pid ${holder.pid} on ${holder.hostname}): this one tries '${next}'; give each container its own --instance-id`,
    );
    await redis.hset(
      key,
      'collision',
      collisionNote({ pid: request.pid, hostname: request.hostname, instanceId: next }),
    );
  }
  throw new NoInstanceIdError(
    `every instance id from '${request.requestedId}' to '${candidateId(request.requestedId, MAX_IDS_TRIED - 1)}' belongs to a live drain-init or has a broken key`,
  );
}

function claim(redis: Redis, key: string, request: ClaimRequest, deadOwner: string): Promise<unknown> {
  return CLAIM_SCRIPT.run(redis, [key], [request.token, deadOwner, String(request.ttlMs)]);
}

/**
 * The owner's named connection says it: a killed drain-init's connection is gone at once. Where CLIENT LIST
 * is refused (a managed Redis, an ACL), a live owner's beat moves within its heartbeat interval.
 */
async function ownerAlive(redis: Redis, key: string, holder: Holder, clock: Clock): Promise<boolean> {
  let clients: string | undefined;
  try {
    clients = String(await redis.call('CLIENT', 'LIST', 'TYPE', 'normal'));
  } catch {
    clients = undefined;
  }
  if (clients !== undefined) return listsConnection(clients, holder.owner);
  await sleep(clock, Math.min((holder.beatEveryMs ?? MAX_BEAT_WAIT_MS) + BEAT_WAIT_SLACK_MS, MAX_BEAT_WAIT_MS));
  const [owner, lastBeat] = await redis.hmget(key, 'owner', 'lastBeat');
  return owner === holder.owner && lastBeat !== holder.lastBeat;
}

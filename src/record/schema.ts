// The key names and hash fields of the instance record; the README's "Keys" section describes them for users.

export type InstanceState = 'starting' | 'running' | 'quieting' | 'stopping' | 'killing' | 'exited';

export interface RecordUpdate {
  readonly state?: InstanceState;
  readonly childPid?: number;
  readonly restarts?: number;
  /** `code 0` or `signal SIGKILL`. */
  readonly lastExit?: string;
  /** One line. */
  readonly stopPlan?: string;
  /** From now; the record stores the absolute deadline in Redis time. */
  readonly deadlineInMs?: number;
  readonly jobsInFlight?: number;
}

export interface Identity {
  /** The program only, never its arguments: they can hold secrets. */
  readonly program: string;
  readonly version: string;
}

/** Who owns the record: one drain-init's start, by a random token (also its Redis connection's name). */
export interface Ownership {
  readonly token: string;
  /** Its heartbeat interval: a claimant that cannot list Redis's clients waits this long to see a beat. */
  readonly beatEveryMs: number;
}

/** What the record says, with times on this process's monotonic clock (performance.now()). */
export interface RecordState {
  readonly state: InstanceState;
  readonly pid: number;
  readonly program: string;
  readonly version: string;
  readonly hostname: string;
  readonly owner: Ownership;
  readonly startedAtMono: number;
  readonly restarts: number;
  readonly childPid?: number;
  readonly lastExit?: string;
  readonly stopPlan?: string;
  readonly deadlineMono?: number;
  readonly jobsInFlight?: number;
}

export interface RecordKeys {
  /** Hash: the record itself. */
  readonly instance: string;
  /** Sorted set: instance ids scored by their last beat, so peers find instances without KEYS or SCAN. */
  readonly registry: string;
}

/**
 * What a drain-init that found this record's id owned by a live drain-init leaves in it (field `collision`),
 * so that both logs tell what happened: who it is, and the id it took instead.
 */
export interface CollisionNote {
  readonly pid: number;
  readonly hostname: string;
  readonly instanceId: string;
}

export function collisionNote(note: CollisionNote): string {
  return JSON.stringify(note);
}

/** Undefined for a note of another shape (written by something else): it is only ever logged. */
export function parseCollisionNote(text: string): CollisionNote | undefined {
  try {
    const value = JSON.parse(text) as Partial<CollisionNote>;
    const { pid, hostname, instanceId } = value;
    if (typeof pid === 'number' && typeof hostname === 'string' && typeof instanceId === 'string') {
      return { pid, hostname, instanceId };
    }
  } catch {
    // not JSON
  }
  return undefined;
}

/** The name of a drain-init's own Redis connection: CLIENT LIST shows whether the owner of a record is connected. */
export function connectionName(token: string): string {
  return `drain-init:${token}`;
}

export function recordKeys(prefix: string, instanceId: string): RecordKeys {
  return { instance: `${prefix}:instance:${instanceId}`, registry: `${prefix}:instances` };
}

export function initialRecord(
  identity: Identity,
  owner: Ownership,
  pid: number,
  hostname: string,
  nowMono: number,
): RecordState {
  return {
    state: 'starting',
    pid,
    program: identity.program,
    version: identity.version,
    hostname,
    owner,
    startedAtMono: nowMono,
    restarts: 0,
  };
}

export function applyUpdate(record: RecordState, update: RecordUpdate, nowMono: number): RecordState {
  const { deadlineInMs, ...fields } = update;
  return { ...record, ...fields, ...(deadlineInMs === undefined ? {} : { deadlineMono: nowMono + deadlineInMs }) };
}

/**
 * The whole record as hash fields, times in Redis milliseconds since the epoch. Every beat writes all of them,
 * so a record lost to a Redis restart or eviction is whole again at the next beat.
 */
export function recordFields(record: RecordState, redisOffsetMs: number, lastBeatMs: number): Record<string, string> {
  const toRedis = (mono: number): string => String(Math.round(mono + redisOffsetMs));
  return {
    state: record.state,
    pid: String(record.pid),
    program: record.program,
    version: record.version,
    hostname: record.hostname,
    owner: record.owner.token,
    beatEveryMs: String(record.owner.beatEveryMs),
    startedAt: toRedis(record.startedAtMono),
    lastBeat: String(lastBeatMs),
    restarts: String(record.restarts),
    ...optional('childPid', record.childPid),
    ...optional('lastExit', record.lastExit),
    ...optional('stopPlan', record.stopPlan),
    ...optional('deadline', record.deadlineMono === undefined ? undefined : toRedis(record.deadlineMono)),
    ...optional('jobsInFlight', record.jobsInFlight),
  };
}

function optional(field: string, value: string | number | undefined): Record<string, string> {
  return value === undefined ? {} : { [field]: String(value) };
}

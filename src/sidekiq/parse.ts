// Sidekiq's heartbeat data in Redis, 5.2 to 8.1, parsed without I/O. Anything not in the format
// Sidekiq writes is skipped and reported as one warning line; the exported parsers never throw.

/** One Sidekiq process as its `<identity>` hash describes it. */
export interface SidekiqProcess {
  /** `hostname:pid:nonce`, the member of `processes` and the name of the hash. */
  readonly identity: string;
  /** `ENV["DYNO"] || Socket.gethostname` of the Sidekiq process. */
  readonly hostname: string;
  /** As seen in Sidekiq's own PID namespace. */
  readonly pid: number;
  /** `-g`/`:tag:`; Rails apps default to the app directory's name, others to ''. */
  readonly tag: string;
  readonly concurrency: number;
  readonly queues: readonly string[];
  /** Jobs running at the last heartbeat. */
  readonly busy: number;
  /** Quieted (TSTP) or stopping: it fetches no new jobs. */
  readonly quiet: boolean;
  /** Time of the last heartbeat in epoch seconds, by the clock of Sidekiq's host. */
  readonly beatEpochS: number;
  /** Sidekiq's version; written from 7.0.2 on. */
  readonly version?: string;
}

/** A job running at the last heartbeat, from `<identity>:work` (6.4.2+) or `<identity>:workers` (up to 6.4.1). */
export interface InFlightJob {
  readonly identity: string;
  /** The field of the work hash: base36 of `Thread#object_id ^ pid`. */
  readonly threadId: string;
  readonly queue: string;
  /** The job JSON as Sidekiq RPUSHes it to `queue:<queue>` when it requeues the job. */
  readonly payload: string;
  readonly jid: string;
  readonly class: string;
  /** When the job started, in whole epoch seconds (every version). */
  readonly runAtEpochS: number;
  /** Absent when the job has no `enqueued_at`. */
  readonly enqueuedAtEpochS?: number;
}

export interface Parsed<T> {
  readonly value: T;
  /** One line each, naming the key and what is wrong with it. */
  readonly warnings: readonly string[];
}

/** Hash fields as HGETALL returns them; an empty object for a missing key. */
export type HashFields = Readonly<Record<string, string>>;

type JsonObject = Record<string, unknown>;

/** Sidekiq 8.0 writes job times in integer epoch ms, earlier versions in float epoch seconds. */
const EPOCH_MS_THRESHOLD = 1e11;

/** Epoch seconds from a Sidekiq job time: ms from 8.0 on, seconds before (an integer-valued float loses its ".0" in JSON, so size tells them apart). */
export function toEpochSeconds(value: number): number {
  return value > EPOCH_MS_THRESHOLD ? value / 1000 : value;
}

/** The `<identity>` hash; undefined without a warning when it has expired (an empty hash). */
export function parseProcess(identity: string, fields: HashFields): Parsed<SidekiqProcess | undefined> {
  if (Object.keys(fields).length === 0) return { value: undefined, warnings: [] };
  try {
    return { value: processFrom(identity, fields), warnings: [] };
  } catch (error) {
    return { value: undefined, warnings: [skipped(`process ${JSON.stringify(identity)}`, error)] };
  }
}

/** The work hash of `identity`: one entry per busy thread; broken entries are skipped one by one. */
export function parseWork(identity: string, fields: HashFields): Parsed<InFlightJob[]> {
  const jobs: InFlightJob[] = [];
  const warnings: string[] = [];
  for (const [threadId, text] of Object.entries(fields)) {
    try {
      jobs.push(jobFrom(identity, threadId, text));
    } catch (error) {
      warnings.push(skipped(`job of ${JSON.stringify(identity)} on thread ${JSON.stringify(threadId)}`, error));
    }
  }
  return { value: jobs, warnings };
}

function processFrom(identity: string, fields: HashFields): SidekiqProcess {
  const info = jsonObject(field(fields, 'info'), 'info');
  const version = info.version === undefined ? undefined : stringAt(info, 'version', 'info');
  return {
    identity,
    hostname: stringAt(info, 'hostname', 'info'),
    pid: integerAt(info, 'pid', 'info'),
    tag: stringAt(info, 'tag', 'info'),
    // A hash field from 8.1.2 on, in `info` before.
    concurrency:
      fields.concurrency === undefined ? integerAt(info, 'concurrency', 'info') : countField(fields, 'concurrency'),
    queues: queuesOf(info),
    busy: countField(fields, 'busy'),
    quiet: booleanField(fields, 'quiet'),
    beatEpochS: epochField(fields, 'beat'),
    ...(version === undefined ? {} : { version }),
  };
}

function jobFrom(identity: string, threadId: string, text: string): InFlightJob {
  const work = jsonObject(text, 'the value');
  const { payload, job } = payloadOf(work.payload);
  const enqueuedAt = job.enqueued_at === undefined ? undefined : numberAt(job, 'enqueued_at', 'payload');
  return {
    identity,
    threadId,
    queue: stringAt(work, 'queue', 'the value'),
    payload,
    jid: stringAt(job, 'jid', 'payload'),
    class: stringAt(job, 'class', 'payload'),
    runAtEpochS: numberAt(work, 'run_at', 'the value'),
    ...(enqueuedAt === undefined ? {} : { enqueuedAtEpochS: toEpochSeconds(enqueuedAt) }),
  };
}

/** `queues` is deprecated since 8.0.9, to be removed in 9.0, in favour of `capsules: {name: {weights: {queue: weight}}}`. */
function queuesOf(info: JsonObject): string[] {
  if (info.queues !== undefined || !isObject(info.capsules)) return stringsAt(info, 'queues', 'info');
  return [...new Set(Object.values(info.capsules).flatMap(capsuleQueues))];
}

function capsuleQueues(capsule: unknown): string[] {
  if (!isObject(capsule) || !isObject(capsule.weights)) throw new Error('a capsule in info has no weights');
  return Object.keys(capsule.weights);
}

/** From 6.0.2 the payload is the job string as fetched; up to 6.0.1 it is the parsed job itself. */
function payloadOf(value: unknown): { payload: string; job: JsonObject } {
  if (typeof value === 'string') return { payload: value, job: jsonObject(value, 'payload') };
  // Re-serialized, so its bytes may differ from the string that was enqueued: Ruby writes 600.0 where
  // JSON.stringify writes 600, and integers beyond 2^53 lose precision in JSON.parse.
  if (isObject(value)) return { payload: JSON.stringify(value), job: value };
  throw new Error(value === undefined ? 'the value has no payload' : 'payload is neither a JSON string nor an object');
}

function skipped(what: string, error: unknown): string {
  return `Sidekiq ${what} skipped: ${error instanceof Error ? error.message : String(error)}`;
}

function field(fields: HashFields, name: string): string {
  const text = fields[name];
  if (text === undefined) throw new Error(`no ${name} field`);
  return text;
}

function countField(fields: HashFields, name: string): number {
  const text = field(fields, name);
  if (!/^\d+$/.test(text)) throw new Error(`${name} field is not a whole number`);
  return Number(text);
}

function booleanField(fields: HashFields, name: string): boolean {
  const text = field(fields, name);
  if (text !== 'true' && text !== 'false') throw new Error(`${name} field is neither true nor false`);
  return text === 'true';
}

function epochField(fields: HashFields, name: string): number {
  const text = field(fields, name);
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value) || value <= 0)
    throw new Error(`${name} field is not an epoch time`);
  return value;
}

function jsonObject(text: string, what: string): JsonObject {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new Error(`${what} is not JSON`);
  }
  if (!isObject(value)) throw new Error(`${what} is not a JSON object`);
  return value;
}

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function present(object: JsonObject, key: string, where: string): unknown {
  const value = object[key];
  if (value === undefined) throw new Error(`${where} has no ${key}`);
  return value;
}

function stringAt(object: JsonObject, key: string, where: string): string {
  const value = present(object, key, where);
  if (typeof value !== 'string') throw new Error(`${key} in ${where} is not a string`);
  return value;
}

function numberAt(object: JsonObject, key: string, where: string): number {
  const value = present(object, key, where);
  if (typeof value !== 'number') throw new Error(`${key} in ${where} is not a number`);
  return value;
}

function integerAt(object: JsonObject, key: string, where: string): number {
  const value = numberAt(object, key, where);
  if (!Number.isSafeInteger(value) || value < 0) throw new Error(`${key} in ${where} is not a whole number`);
  return value;
}

function stringsAt(object: JsonObject, key: string, where: string): string[] {
  const value = present(object, key, where);
  if (!Array.isArray(value) || !value.every((item): item is string => typeof item === 'string'))
    throw new Error(`${key} in ${where} is not a list of strings`);
  return value;
}

/** The three hashes of one member of `processes`, each empty when missing. */
export interface IdentityHashes {
  readonly identity: string;
  readonly process: HashFields;
  /** `<identity>:work`, written from 6.4.2 on. */
  readonly work: HashFields;
  /** `<identity>:workers`, written up to 6.4.1. */
  readonly workers: HashFields;
}

export interface SidekiqSnapshot {
  /** Members whose hash is readable; a ghost whose hash has expired is left out. */
  readonly processes: readonly SidekiqProcess[];
  /** The jobs of every member read, ghosts included: after a SIGKILL this is where they live on for 60 s. */
  readonly jobs: readonly InFlightJob[];
  readonly warnings: readonly string[];
}

export function parseSnapshot(entries: readonly IdentityHashes[]): SidekiqSnapshot {
  const processes: SidekiqProcess[] = [];
  const jobs: InFlightJob[] = [];
  const warnings: string[] = [];
  for (const { identity, process, work, workers } of entries) {
    const parsedProcess = parseProcess(identity, process);
    const parsedWork = parseWork(identity, { ...workers, ...work });
    if (parsedProcess.value !== undefined) processes.push(parsedProcess.value);
    jobs.push(...parsedWork.value);
    warnings.push(...parsedProcess.warnings, ...parsedWork.warnings);
  }
  return { processes, jobs, warnings };
}

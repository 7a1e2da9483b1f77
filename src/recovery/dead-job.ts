// A job that killed its workers too often goes to Sidekiq's Dead set, as Sidekiq writes an entry there:
// the job's JSON with `error_class`, `error_message` and `failed_at`. The job string is kept byte for byte
// but for those three keys (JSON.parse would round floats such as 600.0 and integers beyond 2^53 in the
// job's arguments), so that a person who retries it from the Web UI runs exactly the job that was enqueued.

/** The error class the Web UI shows for such a job. */
export const DEAD_JOB_ERROR_CLASS = 'DrainInit::WorkerDied';

export interface DeadJobFacts {
  /** Worker deaths while it ran, within the window. */
  readonly deaths: number;
  /** How the last worker that ran it ended: `OOM-killed`, `killed by SIGKILL` ... */
  readonly lastCause: string;
  readonly windowHours: number;
  readonly nowEpochMs: number;
}

/** The Dead set entry for `job` (a JSON object string); undefined when it is not a JSON object. */
export function deadJobEntry(job: string, facts: DeadJobFacts): string | undefined {
  const members = topLevelMembers(job);
  if (members === undefined) return undefined;
  const kept = members
    .filter((member) => !REPLACED_KEYS.has(member.key))
    .map((member) => job.slice(member.start, member.end));
  const message =
    `the worker running this job died ${facts.deaths} times in ${facts.windowHours} h (last: ${facts.lastCause}); ` +
    'drain-init moved it here instead of back to its queue';
  const added = [
    `"error_class":${JSON.stringify(DEAD_JOB_ERROR_CLASS)}`,
    `"error_message":${JSON.stringify(message)}`,
    `"failed_at":${failedAt(job, facts.nowEpochMs)}`,
  ];
  return `{${[...kept, ...added].join(',')}}`;
}

const REPLACED_KEYS = new Set(['error_class', 'error_message', 'failed_at']);
/** Sidekiq 8 writes job times in integer epoch ms, earlier versions in float epoch seconds. */
const EPOCH_MS_THRESHOLD = 1e11;

/** In the unit the job's own times use: epoch ms for Sidekiq 8, float epoch seconds before. */
function failedAt(job: string, nowEpochMs: number): string {
  const time = /"(?:enqueued_at|created_at)":(\d+(?:\.\d+)?)/.exec(job)?.[1];
  return time !== undefined && Number(time) > EPOCH_MS_THRESHOLD
    ? String(Math.round(nowEpochMs))
    : (nowEpochMs / 1000).toFixed(3);
}

interface Member {
  readonly key: string;
  /** The member's text, `"key":value`, from its key's opening quote to the end of its value. */
  readonly start: number;
  readonly end: number;
}

/** The members of a JSON object's top level, with where each stands in the text; undefined when it is not one. */
export function topLevelMembers(text: string): Member[] | undefined {
  let at = skipSpace(text, 0);
  if (text[at] !== '{') return undefined;
  at = skipSpace(text, at + 1);
  const members: Member[] = [];
  if (text[at] === '}') return skipSpace(text, at + 1) === text.length ? members : undefined;
  for (;;) {
    if (text[at] !== '"') return undefined;
    const start = at;
    const keyEnd = stringEnd(text, at);
    if (keyEnd === undefined) return undefined;
    let key: unknown;
    try {
      key = JSON.parse(text.slice(at, keyEnd));
    } catch {
      return undefined;
    }
    at = skipSpace(text, keyEnd);
    if (text[at] !== ':') return undefined;
    const end = valueEnd(text, skipSpace(text, at + 1));
    if (end === undefined || typeof key !== 'string') return undefined;
    members.push({ key, start, end });
    at = skipSpace(text, end);
    if (text[at] === '}') return skipSpace(text, at + 1) === text.length ? members : undefined;
    if (text[at] !== ',') return undefined;
    at = skipSpace(text, at + 1);
  }
}

function skipSpace(text: string, at: number): number {
  while (at < text.length && ' \t\n\r'.includes(text.charAt(at))) at++;
  return at;
}

/** The index after the string starting at `at` (its opening quote). */
function stringEnd(text: string, at: number): number | undefined {
  for (let index = at + 1; index < text.length; index++) {
    const char = text[index];
    if (char === '\\') index++;
    else if (char === '"') return index + 1;
  }
  return undefined;
}

/** The index after the value starting at `at`: a string, an object or array (brackets counted outside strings), or a literal. */
function valueEnd(text: string, at: number): number | undefined {
  const first = text[at];
  if (first === '"') return stringEnd(text, at);
  if (first === '{' || first === '[') {
    let depth = 0;
    for (let index = at; index < text.length; index++) {
      const char = text[index];
      if (char === '"') {
        const end = stringEnd(text, index);
        if (end === undefined) return undefined;
        index = end - 1;
      } else if (char === '{' || char === '[') depth++;
      else if (char === '}' || char === ']') {
        depth--;
        if (depth === 0) return index + 1;
      }
    }
    return undefined;
  }
  const literal = /^(?:-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null)/.exec(text.slice(at, at + 64))?.[0];
  return literal === undefined ? undefined : at + literal.length;
}

/**
 * Sidekiq's key names. Under redis-namespace (an old 5.x/6.x setup) every key is `<namespace>:<key>`;
 * the prefix is built here once, and Lua scripts get it as an argument rather than building it again.
 */
export interface SidekiqKeys {
  /** `namespace:` or '' : what comes before each of Sidekiq's keys. */
  readonly prefix: string;
  /** Set of the identities of the running processes. */
  readonly processes: string;
  /** Set of the queue names. */
  readonly queues: string;
  /** Sorted set of the dead jobs. */
  readonly dead: string;
  /** List `queue:<name>`. */
  queue(name: string): string;
  /** Hash `<identity>`: the process's heartbeat. */
  process(identity: string): string;
  /** Hash `<identity>:work` (6.4.2+): the jobs it runs. */
  work(identity: string): string;
  /** Hash `<identity>:workers` (up to 6.4.1): the jobs it runs. */
  workers(identity: string): string;
}

export function sidekiqKeys(namespace: string | undefined): SidekiqKeys {
  const prefix = namespace === undefined ? '' : `${namespace}:`;
  return {
    prefix,
    processes: `${prefix}processes`,
    queues: `${prefix}queues`,
    dead: `${prefix}dead`,
    queue: (name) => `${prefix}queue:${name}`,
    process: (identity) => `${prefix}${identity}`,
    work: (identity) => `${prefix}${identity}:work`,
    workers: (identity) => `${prefix}${identity}:workers`,
  };
}

/** Sidekiq's keys without a namespace. */
export const SIDEKIQ_KEYS: SidekiqKeys = sidekiqKeys(undefined);

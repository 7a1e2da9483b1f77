import { recordKeys } from '../record/schema.js';

export interface RecoveryKeys {
  /**
   * Hash: jid to the JSON of a job in flight: {queue, payload, process, fetchedAt} recorded at its fetch, or
   * {identity, queue, payload} mirrored from a heartbeat. No TTL: it must outlive its instance.
   */
  readonly jobs: string;
  /**
   * Hash: instance id to its owner's token, for every job record that may hold jobs: peers find the records
   * without KEYS or SCAN, and by the token whether their owner is still connected.
   */
  readonly index: string;
  /** String: the random token of whoever is recovering the record. */
  readonly lock: string;
  /** The instance's heartbeat record: it exists while the instance is alive (it expires after the heartbeat TTL). */
  readonly instance: string;
  /** Hash: jid to 'count:first death ms', the worker deaths while each job ran (shared by every instance). */
  readonly deaths: string;
}

export function recoveryKeys(prefix: string, instanceId: string): RecoveryKeys {
  return {
    jobs: `${prefix}:jobs:${instanceId}`,
    index: `${prefix}:job-records`,
    lock: `${prefix}:recovery-lock:${instanceId}`,
    instance: recordKeys(prefix, instanceId).instance,
    deaths: `${prefix}:job-deaths`,
  };
}

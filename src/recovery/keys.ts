import { recordKeys } from '../record/schema.js';

export interface RecoveryKeys {
  /** Hash: jid to the JSON of a mirrored job ({identity, queue, payload}); no TTL, it must outlive its instance. */
  readonly jobs: string;
  /** Set of the instance ids whose job record may hold jobs: peers find the records without KEYS or SCAN. */
  readonly index: string;
  /** String: the random token of whoever is recovering the record. */
  readonly lock: string;
  /** The instance's heartbeat record: it exists while the instance is alive (it expires after the heartbeat TTL). */
  readonly instance: string;
}

export function recoveryKeys(prefix: string, instanceId: string): RecoveryKeys {
  return {
    jobs: `${prefix}:jobs:${instanceId}`,
    index: `${prefix}:jobs`,
    lock: `${prefix}:recovery-lock:${instanceId}`,
    instance: recordKeys(prefix, instanceId).instance,
  };
}

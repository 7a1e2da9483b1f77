// Keeps the instance's job record (`<prefix>:jobs:<id>`) a copy of what its worker is running, so the
// jobs survive the worker and drain-init. One transaction per change, none while nothing changes.
import type { RedisConnection } from '../redis/connection.js';
import type { RecoveryKeys } from './keys.js';
import {
  mirrorChange,
  wholeMirror,
  type Mirror,
  type MirrorChange,
  type QueueFilter,
  type WorkRead,
} from './mirror-diff.js';

export class JobMirror {
  #mirrored: Mirror = new Map();
  /** Redis may have lost the record since the last write (a restart, a flush): the next write sends every entry. */
  #resendAll = true;
  /** Writes go out one after the other, each diffed against what the one before left. */
  #queue: Promise<unknown> = Promise.resolve();
  readonly #use;

  constructor(
    private readonly connection: RedisConnection,
    private readonly keys: RecoveryKeys,
    private readonly instanceId: string,
    /** The owner token the index names for this instance's record. */
    private readonly token: string,
    private readonly queues: QueueFilter,
  ) {
    connection.client.on('ready', () => (this.#resendAll = true));
    this.#use = { kind: 'write', keys: { [keys.jobs]: 'hash', [keys.index]: 'hash' } } as const;
  }

  /** Jobs in the record, as far as this mirror knows. */
  get size(): number {
    return this.#mirrored.size;
  }

  /** Writes what changed since the last write; resolves false (reported to the connection) when Redis did not take it, and the next update sends it again. */
  update(read: WorkRead): Promise<boolean> {
    return this.#enqueue(() => {
      const change = mirrorChange(this.#mirrored, read, this.queues);
      return this.#resendAll ? { ...change, set: wholeMirror(change.next) } : change;
    });
  }

  /** The worker requeued its own jobs (a clean exit): they leave the record. */
  clear(): Promise<boolean> {
    return this.#enqueue(() => ({ set: new Map(), removed: [...this.#mirrored.keys()], next: new Map() }));
  }

  /** Recovery took the jobs out of the record: forgets them without writing. */
  forget(): void {
    this.#mirrored = new Map();
  }

  #enqueue(change: () => MirrorChange): Promise<boolean> {
    const written = this.#queue.then(() => this.#write(change()));
    this.#queue = written;
    return written;
  }

  async #write(change: MirrorChange): Promise<boolean> {
    if (change.set.size === 0 && change.removed.length === 0) {
      this.#mirrored = change.next;
      return true;
    }
    if (!this.connection.writable) return false;
    const transaction = this.connection.client.multi();
    if (change.set.size > 0)
      transaction.hset(this.keys.jobs, change.set).hset(this.keys.index, this.instanceId, this.token);
    if (change.removed.length > 0) transaction.hdel(this.keys.jobs, ...change.removed);
    try {
      const replies = await transaction.exec();
      if (replies === null) throw new Error('transaction aborted');
      for (const [error] of replies) if (error !== null) throw error;
    } catch (error) {
      this.connection.commandFailed(error, this.#use);
      return false;
    }
    this.connection.commandSucceeded(this.#use);
    this.#mirrored = change.next;
    this.#resendAll = false;
    return true;
  }
}

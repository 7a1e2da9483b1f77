import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';

/** A Lua script run by its SHA1 (EVALSHA), sent whole (EVAL) only when the server does not hold it yet. */
export class LuaScript {
  private readonly sha1: string;

  constructor(private readonly source: string) {
    this.sha1 = createHash('sha1').update(source).digest('hex');
  }

  /** The script as a command: EVALSHA, or with `whole`, the EVAL to send when Redis answers NOSCRIPT. */
  command(keys: readonly string[], args: readonly string[], whole = false): [string, ...string[]] {
    return [whole ? 'EVAL' : 'EVALSHA', whole ? this.source : this.sha1, String(keys.length), ...keys, ...args];
  }

  /** Runs the script through `send`, any connection's way of sending one command and reading its reply. */
  async runWith<T>(
    send: (command: [string, ...string[]]) => Promise<T>,
    keys: readonly string[],
    args: readonly string[],
  ): Promise<T> {
    try {
      return await send(this.command(keys, args));
    } catch (error) {
      // NOSCRIPT means the script did not run, so sending it whole cannot run it twice.
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      return send(this.command(keys, args, true));
    }
  }

  /** Runs the script on an ioredis connection, its strings decoded. */
  run(redis: Redis, keys: readonly string[], args: readonly string[]): Promise<unknown> {
    return this.runWith((command) => redis.call(...command), keys, args);
  }

  /** Runs the script on an ioredis connection, its strings as Buffers. */
  runBuffers(redis: Redis, keys: readonly string[], args: readonly string[]): Promise<unknown> {
    return this.runWith((command) => redis.callBuffer(...command), keys, args);
  }
}

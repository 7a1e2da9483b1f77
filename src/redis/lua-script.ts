import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';

/** A Lua script run by its SHA1 (EVALSHA), sent whole (EVAL) only when the server does not hold it yet. */
export class LuaScript {
  private readonly sha1: string;

  constructor(private readonly source: string) {
    this.sha1 = createHash('sha1').update(source).digest('hex');
  }

  /**
   * The script as a command for a connection drain-init writes to itself (the relay's): EVALSHA, or with
   * `whole`, the EVAL to send when Redis answers NOSCRIPT.
   */
  command(keys: readonly string[], args: readonly string[], whole = false): string[] {
    return [whole ? 'EVAL' : 'EVALSHA', whole ? this.source : this.sha1, String(keys.length), ...keys, ...args];
  }

  async run(redis: Redis, keys: readonly string[], args: readonly string[]): Promise<unknown> {
    try {
      return await redis.evalsha(this.sha1, keys.length, ...keys, ...args);
    } catch (error) {
      // NOSCRIPT means the script did not run, so sending it whole cannot run it twice.
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      return redis.eval(this.source, keys.length, ...keys, ...args);
    }
  }
}

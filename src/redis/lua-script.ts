import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';

/** A Lua script run by its SHA1 (EVALSHA), sent whole (EVAL) only when the server does not hold it yet. */
export class LuaScript {
  private readonly sha1: string;

  constructor(private readonly source: string) {
    this.sha1 = createHash('sha1').update(source).digest('hex');
  }

  /**
   * The script as commands for a connection drain-init writes to itself (the relay's): EVALSHA, and the EVAL to
   * send when Redis answers NOSCRIPT.
   */
  commands(keys: readonly string[], args: readonly string[]): { evalsha: string[]; eval: string[] } {
    const rest = [String(keys.length), ...keys, ...args];
    return { evalsha: ['EVALSHA', this.sha1, ...rest], eval: ['EVAL', this.source, ...rest] };
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

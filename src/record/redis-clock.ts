/**
 * Redis server time (TIME) carried forward on the monotonic clock between readings, so every
 * instance's timestamps share one clock whatever the local clocks say.
 */
export class RedisClock {
  /** Redis milliseconds since the epoch minus performance.now(); undefined until the first TIME reply. */
  private offsetMs: number | undefined;

  get synced(): boolean {
    return this.offsetMs !== undefined;
  }

  /** Takes a TIME reply read between `sentMono` and `receivedMono`, placing it halfway through the round trip. */
  observe(reply: unknown, sentMono: number, receivedMono: number): void {
    this.offsetMs = timeReplyMs(reply) - (sentMono + receivedMono) / 2;
  }

  /** The Redis-clock offset to add to a performance.now() reading; throws before the first reading. */
  offset(): number {
    if (this.offsetMs === undefined) throw new Error('Redis clock not read yet');
    return this.offsetMs;
  }
}

/** TIME answers [seconds, microseconds] as strings. */
export function timeReplyMs(reply: unknown): number {
  if (!Array.isArray(reply) || reply.length !== 2) throw new Error(`unexpected TIME reply ${JSON.stringify(reply)}`);
  const [seconds, micros] = reply.map(Number);
  if (!Number.isSafeInteger(seconds) || !Number.isSafeInteger(micros))
    throw new Error(`unexpected TIME reply ${JSON.stringify(reply)}`);
  return (seconds ?? 0) * 1000 + (micros ?? 0) / 1000;
}

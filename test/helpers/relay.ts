// The Redis relay in the test process, and plain clients for it: a raw socket that shows the bytes on the wire,
// and redis-cli.
import { randomUUID } from 'node:crypto';
import { createConnection, type Socket } from 'node:net';
import { execa } from 'execa';
import { pino } from 'pino';
import { startRelay, type Relay, type RelayOptions } from '../../src/redis/relay.js';

export interface LogLine {
  readonly level: number;
  readonly msg: string;
  readonly reason?: string;
  readonly heldBack?: number;
  readonly [field: string]: unknown;
}

export interface TestRelay {
  readonly relay: Relay;
  readonly port: number;
  /** Every line the relay logged, parsed. */
  readonly lines: LogLine[];
  /** Lines logged as warnings. */
  warnings(): LogLine[];
}

/** Starts a relay on a free port to redis-server on 127.0.0.1:redisPort, logging into memory. */
export async function startTestRelay(
  redisPort: number,
  options: Partial<Omit<RelayOptions, 'log'>> = {},
): Promise<TestRelay> {
  const lines: LogLine[] = [];
  const log = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) });
  const relay = await startRelay({ upstream: { host: '127.0.0.1', port: redisPort, tls: false }, ...options, log });
  return {
    relay,
    port: relay.port ?? 0,
    lines,
    warnings: () => lines.filter((line) => line.level === 40),
  };
}

/** A client socket that keeps every byte it receives. */
export class RawClient {
  readonly socket: Socket;
  readonly closed: Promise<void>;
  #received: Buffer[] = [];
  #receivedBytes = 0;
  #waiters = new Set<() => void>();

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.#received.push(chunk);
      this.#receivedBytes += chunk.length;
      for (const waiter of this.#waiters) waiter();
    });
    socket.on('error', () => {});
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    void this.closed.then(() => {
      for (const waiter of this.#waiters) waiter();
    });
  }

  static connect(port: number): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = createConnection({ host: '127.0.0.1', port });
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve(new RawClient(socket));
      });
    });
  }

  get receivedBytes(): number {
    return this.#receivedBytes;
  }

  write(bytes: string | Buffer): void {
    this.socket.write(typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes);
  }

  /** Everything received so far, and forgets it. */
  take(): Buffer {
    const all = Buffer.concat(this.#received);
    this.#received = [];
    this.#receivedBytes = 0;
    return all;
  }

  peek(): Buffer {
    return Buffer.concat(this.#received);
  }

  /** Waits until what was received (since the last take) satisfies the test; throws on close or timeout. */
  async until(test: (received: Buffer) => boolean, what: string, timeoutMs?: number): Promise<Buffer> {
    await this.#waitFor(() => test(this.peek()), what, timeoutMs);
    return this.take();
  }

  /** The last `length` bytes received, without joining everything received. */
  #tail(length: number): Buffer {
    const pieces: Buffer[] = [];
    let collected = 0;
    for (let index = this.#received.length - 1; index >= 0 && collected < length; index--) {
      const piece = this.#received[index] as Buffer;
      pieces.unshift(piece);
      collected += piece.length;
    }
    const tail = Buffer.concat(pieces);
    return tail.subarray(Math.max(0, tail.length - length));
  }

  async #waitFor(ready: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      if (ready()) return;
      if (this.socket.destroyed)
        throw new Error(`connection closed while waiting for ${what}; got ${show(this.peek())}`);
      const remaining = deadline - performance.now();
      if (remaining <= 0) throw new Error(`timed out waiting for ${what}; got ${show(this.peek())}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, remaining);
        const waiters = this.#waiters;
        function done(): void {
          clearTimeout(timer);
          waiters.delete(done);
          resolve();
        }
        waiters.add(done);
      });
    }
  }

  /** Waits for exactly these bytes (then nothing else). */
  async expect(bytes: string, timeoutMs?: number): Promise<void> {
    const wanted = Buffer.from(bytes, 'latin1');
    await this.#waitFor(() => this.#receivedBytes >= wanted.length, show(wanted), timeoutMs);
    const got = this.take();
    if (!got.equals(wanted)) throw new Error(`expected ${show(wanted)}, got ${show(got)}`);
  }

  /** Sends the bytes, then an ECHO marker; returns the bytes received before the marker's reply. */
  async exchange(bytes: string | Buffer, timeoutMs?: number): Promise<Buffer> {
    const marker = `marker-${randomUUID()}`;
    const markerReply = Buffer.from(`$${marker.length}\r\n${marker}\r\n`);
    this.write(Buffer.concat([typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes, resp('ECHO', marker)]));
    await this.#waitFor(() => this.#tail(markerReply.length).equals(markerReply), 'the marker', timeoutMs);
    return this.take().subarray(0, -markerReply.length);
  }

  close(): void {
    this.socket.destroy();
  }
}

/** The bytes in a form fit for a failure message: escaped, and long runs elided. */
export function show(bytes: Buffer): string {
  const text = JSON.stringify(bytes.toString('latin1'));
  return text.length > 300 ? `${text.slice(0, 200)}...(${bytes.length} bytes)...${text.slice(-80)}` : text;
}

/** A command as RESP multibulk. */
export function resp(...args: (string | Buffer)[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const arg of args) {
    const bytes = typeof arg === 'string' ? Buffer.from(arg) : arg;
    parts.push(Buffer.from(`$${bytes.length}\r\n`), bytes, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

/** Runs redis-cli against 127.0.0.1:port with the commands on its stdin, one per line; its stdout. */
export async function redisCli(port: number, args: readonly string[], input: string): Promise<string> {
  const { stdout } = await execa('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], {
    input,
    timeout: 30_000,
  });
  return stdout;
}

/** Polls until the probe gives a value other than undefined. */
export async function eventually<T>(
  probe: () => Promise<T | undefined> | T | undefined,
  what: string,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

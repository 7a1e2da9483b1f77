// A real redis-server for integration tests and the demo: loopback only, no persistence, a free port.
// Talks RESP over a plain net.Socket (one short connection per call), so no npm dependency is needed and
// a call made across restart() simply reconnects. Only erasable TypeScript syntax: the demo runs this file
// with Node 24's type stripping.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach } from 'vitest';

/** A decoded RESP reply: simple and bulk strings, integers, nil, arrays. Error replies reject instead. */
export type RespValue = string | number | null | RespValue[];

export interface RedisOptions {
  /** Sets `requirepass`; every helper call then sends AUTH first. */
  readonly password?: string;
  /** More redis-server arguments, e.g. ['--maxmemory', '10mb']. */
  readonly extraArgs?: readonly string[];
  /** How long to wait for PONG after each start, in ms (default 10 s). */
  readonly startTimeoutMs?: number;
}

export interface RedisServer {
  readonly port: number;
  /** redis://127.0.0.1:PORT, or redis://:PASSWORD@127.0.0.1:PORT with a password. */
  readonly url: string;
  /** Host pid of the current redis-server process. */
  readonly pid: () => number;
  /** Sends one command; the reply flattened to a string (arrays joined by "\n", nil as ""), like `redis-cli --raw`. */
  command(...args: (string | number)[]): Promise<string>;
  /** Sends one command; the decoded reply. */
  call(...args: (string | number)[]): Promise<RespValue>;
  /** Sends several commands in one write (a pipeline, not a transaction); their replies. */
  pipeline(commands: (string | number)[][]): Promise<RespValue[]>;
  /** What redis-server wrote to stdout/stderr since the first start. */
  log(): string;
  /** Stops redis-server (SIGTERM, then SIGKILL after 3 s) and removes its temp dir. Idempotent; concurrent calls share one stop. */
  stop(): Promise<void>;
  /** Stops and starts redis-server on the same port. The data is lost (nothing is persisted). */
  restart(): Promise<void>;
}

const HOST = '127.0.0.1';
const PORT_ATTEMPTS = 8;

/** Every redis-server started here, killed synchronously if the test process exits without stopping them. */
const running = new Set<ChildProcess>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of running) child.kill('SIGKILL');
  });
}

/** Starts redis-server on a free loopback port and waits until it answers PING. */
export async function startRedis(options: RedisOptions = {}): Promise<RedisServer> {
  installExitHook();
  const dir = mkdtempSync(join(tmpdir(), 'drain-init-redis-'));
  let output = '';
  let child: ChildProcess | undefined;
  let stopped: Promise<void> | undefined;
  const password = options.password;
  const timeoutMs = options.startTimeoutMs ?? 10_000;

  const launch = async (port: number): Promise<ChildProcess> => {
    const args = [
      '--port',
      String(port),
      '--bind',
      HOST,
      '--protected-mode',
      'yes',
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      dir,
      '--daemonize',
      'no',
      '--logfile',
      '',
      ...(password === undefined ? [] : ['--requirepass', password]),
      ...(options.extraArgs ?? []),
    ];
    const proc = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    running.add(proc);
    const append = (chunk: Buffer): void => {
      output += chunk.toString();
    };
    proc.stdout?.on('data', append);
    proc.stderr?.on('data', append);
    const exited = new Promise<string>((resolve) => {
      proc.once('error', (error) => resolve(`failed to start: ${error.message}`));
      proc.once('exit', (code, signal) => {
        running.delete(proc);
        resolve(`exited (code ${String(code)}, signal ${String(signal)})`);
      });
    });
    const ready = waitUntilServing(port, password, proc, timeoutMs);
    const outcome = await Promise.race([ready, exited.then((why) => new Error(`redis-server on port ${port} ${why}`))]);
    if (outcome instanceof Error) {
      await terminate(proc);
      throw outcome;
    }
    return proc;
  };

  // Race-tolerant: the port is free when probed, but someone may take it before redis-server binds it.
  let port = 0;
  let lastError: unknown;
  for (let attempt = 0; attempt < PORT_ATTEMPTS && child === undefined; attempt++) {
    port = await freePort();
    try {
      child = await launch(port);
    } catch (error) {
      lastError = error;
    }
  }
  if (child === undefined) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`could not start redis-server after ${PORT_ATTEMPTS} attempts: ${String(lastError)}\n${output}`);
  }

  const server: RedisServer = {
    port,
    url:
      password === undefined ? `redis://${HOST}:${port}` : `redis://:${encodeURIComponent(password)}@${HOST}:${port}`,
    pid: () => child?.pid ?? -1,
    ...connectRedis(port, password),
    log: () => output,
    stop: () => {
      stopped ??= (async () => {
        if (child !== undefined) await terminate(child);
        rmSync(dir, { recursive: true, force: true });
      })();
      return stopped;
    },
    restart: async () => {
      if (stopped !== undefined) throw new Error('redis-server was stopped');
      if (child !== undefined) await terminate(child);
      child = undefined;
      // The same port is wanted, so retry for a while instead of picking another one.
      const deadline = Date.now() + timeoutMs;
      while (child === undefined) {
        try {
          child = await launch(port);
        } catch (error) {
          if (Date.now() > deadline) throw error;
          await sleep(100);
        }
      }
    },
  };
  return server;
}

/** The calls of a RedisServer, for a redis-server on 127.0.0.1:port started elsewhere (in a container). */
export function connectRedis(port: number, password?: string): Pick<RedisServer, 'call' | 'pipeline' | 'command'> {
  const call = (...args: (string | number)[]): Promise<RespValue> =>
    sendCommands(port, password, [args.map(String)]).then(last);
  return {
    call,
    pipeline: async (commands) =>
      commands.length === 0
        ? []
        : sendCommands(
            port,
            password,
            commands.map((args) => args.map(String)),
          ),
    command: async (...args) => flatten(await call(...args)),
  };
}

/** A port that was free on 127.0.0.1 a moment ago (the kernel picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, HOST, () => {
      const address = probe.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      probe.close(() => (port === 0 ? reject(new Error('no port assigned')) : resolve(port)));
    });
  });
}

/** Resolves once *this* redis-server (matched by pid, not just anything on the port) answers PING. */
async function waitUntilServing(
  port: number,
  password: string | undefined,
  proc: ChildProcess,
  timeoutMs: number,
): Promise<void | Error> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (proc.exitCode !== null || proc.signalCode !== null)
      return new Error(`redis-server on port ${port} exited while starting`);
    try {
      const [pong, info] = await sendCommands(port, password, [['PING'], ['INFO', 'server']]);
      const pid = /process_id:(\d+)/.exec(String(info))?.[1];
      if (pong === 'PONG' && Number(pid) === proc.pid) return;
      if (pong === 'PONG') return new Error(`port ${port} is served by another redis-server (pid ${String(pid)})`);
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline)
      return new Error(`redis-server on port ${port} did not answer PING within ${timeoutMs} ms`);
    await sleep(25);
  }
}

async function terminate(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) {
    running.delete(proc);
    return;
  }
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  proc.kill('SIGTERM');
  const timer = setTimeout(() => proc.kill('SIGKILL'), 3_000);
  await exited;
  clearTimeout(timer);
  running.delete(proc);
}

/** Opens a connection, sends AUTH (when needed) and the commands pipelined, and returns their replies. */
function sendCommands(port: number, password: string | undefined, commands: string[][]): Promise<RespValue[]> {
  const all = password === undefined ? commands : [['AUTH', password], ...commands];
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: HOST, port });
    let buffer = Buffer.alloc(0);
    const replies: RespValue[] = [];
    let failure: Error | undefined;
    socket.setTimeout(10_000, () => socket.destroy(new Error(`redis ${all.at(-1)?.[0] ?? ''} timed out`)));
    socket.once('error', reject);
    socket.once('close', () => reject(new Error(`redis connection to port ${port} closed before all replies arrived`)));
    socket.once('connect', () => socket.write(Buffer.concat(all.map(encode))));
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      try {
        for (;;) {
          const parsed = parse(buffer, 0);
          if (parsed === undefined) break;
          buffer = buffer.subarray(parsed.end);
          if (parsed.value instanceof RespError)
            failure ??= new Error(`redis ${all[replies.length]?.[0] ?? ''}: ${parsed.value.message}`);
          replies.push(parsed.value instanceof RespError ? null : parsed.value);
        }
      } catch (error) {
        socket.destroy(error as Error);
        return;
      }
      if (replies.length < all.length) return;
      socket.end();
      if (failure !== undefined) reject(failure);
      else resolve(password === undefined ? replies : replies.slice(1));
    });
  });
}

function encode(args: string[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const arg of args) {
    const bytes = Buffer.from(arg, 'utf8');
    parts.push(Buffer.from(`$${bytes.length}\r\n`), bytes, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

class RespError {
  readonly message: string;
  constructor(message: string) {
    this.message = message;
  }
}

type Parsed = { value: RespValue | RespError; end: number };

/** Parses one RESP2 reply starting at `start`; undefined while it is incomplete. */
function parse(buffer: Buffer, start: number): Parsed | undefined {
  const lineEnd = buffer.indexOf('\r\n', start);
  if (lineEnd === -1) return undefined;
  const type = String.fromCharCode(buffer[start] ?? 0);
  const line = buffer.toString('utf8', start + 1, lineEnd);
  const next = lineEnd + 2;
  switch (type) {
    case '+':
      return { value: line, end: next };
    case '-':
      return { value: new RespError(line), end: next };
    case ':':
      return { value: Number(line), end: next };
    case '$': {
      const length = Number(line);
      if (length < 0) return { value: null, end: next };
      if (buffer.length < next + length + 2) return undefined;
      return { value: buffer.toString('utf8', next, next + length), end: next + length + 2 };
    }
    case '*': {
      const count = Number(line);
      if (count < 0) return { value: null, end: next };
      const items: RespValue[] = [];
      let offset = next;
      for (let i = 0; i < count; i++) {
        const item = parse(buffer, offset);
        if (item === undefined) return undefined;
        items.push(item.value instanceof RespError ? null : item.value);
        offset = item.end;
      }
      return { value: items, end: offset };
    }
    default:
      throw new Error(`unexpected RESP type byte ${JSON.stringify(type)}`);
  }
}

function flatten(value: RespValue): string {
  if (value === null) return '';
  if (Array.isArray(value)) return value.map(flatten).join('\n');
  return String(value);
}

function last(replies: RespValue[]): RespValue {
  return replies.at(-1) ?? null;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Registers the hooks of a test file (or describe block) that shares one redis-server: started before
 * all, flushed before each test, stopped after all. The returned function gives the server.
 */
export function redisTestBed(options: RedisOptions = {}): () => RedisServer {
  let server: RedisServer | undefined;
  beforeAll(async () => {
    server = await startRedis(options);
  });
  afterAll(async () => {
    await server?.stop();
  });
  beforeEach(async () => {
    await current().call('FLUSHALL');
  });
  const current = (): RedisServer => {
    if (server === undefined) throw new Error('redis-server did not start');
    return server;
  };
  return current;
}

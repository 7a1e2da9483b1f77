// The instance record against real redis-servers on free loopback ports: the beat, state changes,
// the final write, and every Redis failure the worker must run through.
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { connectRedis, type RedisConnection } from '../../src/redis/connection.js';
import { startInstanceRecorder, type InstanceRecorder, type RecordConfig } from '../../src/record/recorder.js';
import { startRedis, type RedisServer } from '../helpers/redis.js';
import { eventually } from '../helpers/pid1.js';
import { systemClock } from '../../src/lib/clock.js';
import { parseRedisUrl } from '../../src/redis/url.js';
import { startTlsRedis, type TlsRedis } from '../helpers/tls.js';

const PASSWORD = 'pw-5ecret-never-logged';
const INTERVAL_MS = 200;
const TTL_MS = 1_000;
const identity = { program: 'sidekiq', version: '0.1.0' };

interface LogLine {
  readonly level: number;
  readonly msg: string;
  readonly reason?: string;
  readonly redis?: string;
}

/** Every log line of every recorder in this file, to prove at the end that no password was ever written. */
const allOutput: string[] = [];
const consoleOutput = vi.fn();
const recorders: { recorder: InstanceRecorder; connection: RedisConnection }[] = [];

function capture(): { lines: LogLine[]; log: pino.Logger } {
  const lines: LogLine[] = [];
  const log = pino(
    { level: 'trace' },
    {
      write: (line: string) => {
        allOutput.push(line);
        lines.push(JSON.parse(line) as LogLine);
      },
    },
  );
  return { lines, log };
}

function start(
  url: string,
  overrides: Partial<RecordConfig> = {},
): { recorder: InstanceRecorder; lines: LogLine[]; id: string } {
  const { lines, log } = capture();
  const id = overrides.instanceId ?? `worker-${Math.random().toString(36).slice(2, 8)}`;
  const config: RecordConfig = {
    instanceId: id,
    redisPrefix: 'drain-init',
    heartbeatIntervalMs: INTERVAL_MS,
    heartbeatTtlMs: TTL_MS,
    ...overrides,
  };
  const connection = connectRedis(parseRedisUrl(url), log, `drain-init:${id}`, systemClock);
  const recorder = startInstanceRecorder(
    connection,
    config,
    { token: `token-${id}`, beatEveryMs: INTERVAL_MS },
    log,
    identity,
    systemClock,
  );
  recorders.push({ recorder, connection });
  return { recorder, lines, id };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function record(server: RedisServer, id: string): Promise<Record<string, string>> {
  const flat = (await server.call('HGETALL', `drain-init:instance:${id}`)) as string[];
  const fields: Record<string, string> = {};
  for (let index = 0; index + 1 < flat.length; index += 2) fields[flat[index] ?? ''] = flat[index + 1] ?? '';
  return fields;
}

async function field(server: RedisServer, id: string, name: string, wanted: string): Promise<true | undefined> {
  return (await server.command('HGET', `drain-init:instance:${id}`, name)) === wanted ? true : undefined;
}

function messages(lines: readonly LogLine[], msg: string): LogLine[] {
  return lines.filter((line) => line.msg === msg);
}

const UNAVAILABLE = 'Redis unavailable; the worker runs on';
const AVAILABLE_AGAIN = 'Redis available again';
const REFUSING = 'Redis refuses commands: its writes are tried again at most every 30 s; the worker runs on';

beforeAll(() => {
  for (const method of ['log', 'warn', 'error', 'info'] as const)
    vi.spyOn(console, method).mockImplementation(consoleOutput);
});

async function closeAll(): Promise<void> {
  await Promise.all(
    recorders.splice(0).map(async ({ recorder, connection }) => {
      await recorder.close({ state: 'exited' });
      connection.close();
    }),
  );
}

afterEach(closeAll);

afterAll(() => {
  const everything = [...allOutput, ...consoleOutput.mock.calls.flat().map(String)].join('\n');
  expect(everything).not.toContain(PASSWORD);
  expect(everything).not.toContain('wrong-pw-never-logged');
  vi.restoreAllMocks();
});

describe('the record', () => {
  let server: RedisServer;
  beforeAll(async () => (server = await startRedis()));
  afterAll(async () => {
    await closeAll();
    await server.stop();
  });

  it('appears with its TTL, in the registry, in Redis time, and refreshes every beat', async () => {
    const { recorder, lines, id } = start(server.url);
    const first = await eventually(async () => {
      const fields = await record(server, id);
      return fields.lastBeat === undefined ? undefined : fields;
    }, 'the record');
    expect(first).toMatchObject({
      state: 'starting',
      pid: String(process.pid),
      program: 'sidekiq',
      version: '0.1.0',
      restarts: '0',
    });
    expect(Number(first.startedAt)).toBeLessThanOrEqual(Number(first.lastBeat));
    const [seconds = '0', micros = '0'] = (await server.call('TIME')) as string[];
    expect(Math.abs(Number(seconds) * 1000 + Number(micros) / 1000 - Number(first.lastBeat))).toBeLessThan(
      2 * INTERVAL_MS,
    );
    const ttl = Number(await server.command('PTTL', `drain-init:instance:${id}`));
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(TTL_MS);
    expect(await server.command('ZSCORE', 'drain-init:instances', id)).toBe(first.lastBeat);

    await sleep(3 * TTL_MS);
    const later = await record(server, id);
    expect(Number(later.lastBeat)).toBeGreaterThan(Number(first.lastBeat) + TTL_MS);
    expect(Number(await server.command('PTTL', `drain-init:instance:${id}`))).toBeGreaterThan(TTL_MS - 2 * INTERVAL_MS);
    expect(recorder.connected).toBe(true);
    expect(messages(lines, 'connected to Redis')).toHaveLength(1);
    expect(lines.filter((line) => line.level >= 40)).toEqual([]);
  });

  it('shows a state change within 100 ms, with the deadline in Redis time', async () => {
    const { recorder, id } = start(server.url, { heartbeatIntervalMs: 60_000, heartbeatTtlMs: 120_000 });
    await eventually(() => field(server, id, 'state', 'starting'), 'the first write');
    const before = performance.now();
    recorder.update({
      state: 'stopping',
      childPid: 4242,
      stopPlan: 'TSTP now, TERM at 5s, KILL at 28s',
      deadlineInMs: 28_000,
      jobsInFlight: 3,
    });
    await eventually(() => field(server, id, 'state', 'stopping'), 'the new state', 1_000, 2);
    expect(performance.now() - before).toBeLessThan(100);
    const fields = await record(server, id);
    expect(fields).toMatchObject({
      childPid: '4242',
      stopPlan: 'TSTP now, TERM at 5s, KILL at 28s',
      jobsInFlight: '3',
    });
    expect(Number(fields.deadline) - Number(fields.lastBeat)).toBeGreaterThan(27_900);
    expect(Number(fields.deadline) - Number(fields.lastBeat)).toBeLessThanOrEqual(28_000);
  });

  it('writes the final state at close, which then expires, and writes nothing more', async () => {
    const { recorder, id } = start(server.url);
    await eventually(() => field(server, id, 'state', 'starting'), 'the first write');
    recorder.update({ state: 'running', childPid: 7 });
    expect(await server.command('CLIENT', 'LIST')).toContain(`name=drain-init:${id}`);
    await recorder.close({ state: 'exited', lastExit: 'signal SIGKILL', restarts: 2 });
    expect(await record(server, id)).toMatchObject({
      state: 'exited',
      lastExit: 'signal SIGKILL',
      restarts: '2',
      childPid: '7',
    });
    expect(Number(await server.command('PTTL', `drain-init:instance:${id}`))).toBeGreaterThan(0);
    recorder.update({ state: 'running' });
    await eventually(
      async () => ((await server.command('EXISTS', `drain-init:instance:${id}`)) === '0' ? true : undefined),
      'the expiry',
    );
  });

  it('prunes instances whose last beat is older than the TTL from the registry', async () => {
    await server.command('ZADD', 'drain-init:instances', 1, 'long-gone');
    const { id } = start(server.url);
    await eventually(() => field(server, id, 'state', 'starting'), 'the first write');
    expect(await server.command('ZSCORE', 'drain-init:instances', 'long-gone')).toBe('');
  });

  it('honours the database index of the URL', async () => {
    const { id } = start(`${server.url}/3`);
    await eventually(
      async () => ((await server.command('INFO', 'keyspace')).includes('db3:keys=2') ? true : undefined),
      'keys in db 3',
    );
    expect(await server.command('EXISTS', `drain-init:instance:${id}`)).toBe('0');
  });

  it('logs in with an ACL user and password', async () => {
    await server.command('ACL', 'SETUSER', 'drainer', 'on', `>${PASSWORD}`, '~drain-init:*', '+@all');
    const { recorder, lines, id } = start(`redis://drainer:${PASSWORD}@127.0.0.1:${server.port}`);
    await eventually(() => field(server, id, 'state', 'starting'), 'the record');
    expect(recorder.connected).toBe(true);
    expect(lines[0]?.redis).toBe(`redis://drainer:***@127.0.0.1:${server.port}/0`);
  });
});

describe('Redis failures', () => {
  it('runs on while Redis is stopped and restarted: one line each way, the latest state written on recovery', async () => {
    const server = await startRedis();
    try {
      const { recorder, lines, id } = start(server.url);
      await eventually(() => field(server, id, 'state', 'starting'), 'the record');
      process.kill(server.pid(), 'SIGKILL');
      await eventually(async () => (recorder.connected ? undefined : true), 'the outage');
      for (let beat = 0; beat < 8; beat++) {
        recorder.update({ state: 'running', jobsInFlight: beat });
        await sleep(INTERVAL_MS / 2);
      }
      await server.restart();
      await eventually(() => field(server, id, 'jobsInFlight', '7'), 'the record after the restart');
      await sleep(3 * INTERVAL_MS);
      expect(await server.command('HGET', `drain-init:instance:${id}`, 'state')).toBe('running');
      expect(recorder.connected).toBe(true);
      expect(messages(lines, UNAVAILABLE)).toHaveLength(1);
      expect(messages(lines, AVAILABLE_AGAIN)).toHaveLength(1);
      expect(lines.map((line) => line.msg)).toEqual(['connected to Redis', UNAVAILABLE, AVAILABLE_AGAIN]);
    } finally {
      await closeAll();
      await server.stop();
    }
  });

  it('starts without Redis, logs it once, and connects when Redis comes', async () => {
    const port = await freePort();
    const { recorder, lines, id } = start(`redis://127.0.0.1:${port}`);
    await sleep(5 * INTERVAL_MS);
    recorder.update({ state: 'running', childPid: 99 });
    expect(recorder.connected).toBe(false);
    expect(lines.map((line) => line.msg)).toEqual([UNAVAILABLE]);
    expect(lines[0]?.reason).toMatch(/ECONNREFUSED/);
    const late = spawnRedis(port);
    try {
      await eventually(async () => (recorder.connected ? true : undefined), 'the connection');
      await eventually(
        async () =>
          (await redisCli(port, 'HGET', `drain-init:instance:${id}`, 'childPid')) === '99' ? true : undefined,
        'the record',
      );
      expect(lines.map((line) => line.msg)).toEqual([UNAVAILABLE, AVAILABLE_AGAIN]);
    } finally {
      late.kill('SIGKILL');
    }
  });

  it('closes within about a second when Redis never came, saying the final state is not written', async () => {
    const { recorder, lines } = start(`redis://127.0.0.1:${await freePort()}`);
    await sleep(INTERVAL_MS);
    const before = performance.now();
    await recorder.close({ state: 'exited', lastExit: 'code 0' });
    expect(performance.now() - before).toBeLessThan(1_200);
    expect(lines.map((line) => line.msg)).toEqual([
      UNAVAILABLE,
      'final state not written to Redis; the record expires as it was',
    ]);
  });

  it('logs a wrong password once, without the password', async () => {
    const server = await startRedis({ password: PASSWORD });
    try {
      const { recorder, lines } = start(`redis://:wrong-pw-never-logged@127.0.0.1:${server.port}`);
      await sleep(10 * INTERVAL_MS);
      recorder.update({ state: 'running' });
      expect(recorder.connected).toBe(false);
      expect(lines.map((line) => line.msg)).toEqual([UNAVAILABLE]);
      expect(lines[0]?.reason).toMatch(/WRONGPASS|invalid username-password/);
      expect(lines[0]?.redis).toBe(`redis://:***@127.0.0.1:${server.port}/0`);
      const right = start(server.url);
      await eventually(
        async () =>
          (await server.command('HGET', `drain-init:instance:${right.id}`, 'state')) === 'starting' ? true : undefined,
        'the record',
      );
    } finally {
      await closeAll();
      await server.stop();
    }
  });

  it.each([
    ['a READONLY replica', ['REPLICAOF', '127.0.0.1', '1'], ['REPLICAOF', 'NO', 'ONE'], /READONLY/],
    ['OOM command not allowed', ['CONFIG', 'SET', 'maxmemory', '1'], ['CONFIG', 'SET', 'maxmemory', '0'], /OOM/],
  ])('logs %s once and recovers when writes are taken again', async (_name, breakIt, fixIt, reason) => {
    const server = await startRedis();
    try {
      const { recorder, lines, id } = start(server.url);
      await eventually(() => field(server, id, 'state', 'starting'), 'the record');
      await server.command(...breakIt);
      await eventually(async () => (recorder.connected ? undefined : true), 'the refusal');
      recorder.update({ state: 'quieting' });
      await sleep(5 * INTERVAL_MS);
      await server.command(...fixIt);
      await eventually(() => field(server, id, 'state', 'quieting'), 'the record after the fix');
      // Redis answers but refuses the writes: no outage of the connection, a refusal, once.
      expect(lines.map((line) => line.msg)).toEqual(['connected to Redis', REFUSING, AVAILABLE_AGAIN]);
      expect(lines[1]?.reason).toMatch(reason);
    } finally {
      await closeAll();
      await server.stop();
    }
  });

  it('never blocks on a Redis that stops answering: update returns at once, close within about a second', async () => {
    const server = await startRedis();
    try {
      const { recorder, lines, id } = start(server.url);
      await eventually(() => field(server, id, 'state', 'starting'), 'the record');
      process.kill(server.pid(), 'SIGSTOP');
      const before = performance.now();
      for (let beat = 0; beat < 1_000; beat++) recorder.update({ jobsInFlight: beat });
      expect(performance.now() - before).toBeLessThan(50);
      await eventually(async () => (recorder.connected ? undefined : true), 'the timeout', 5_000);
      const closing = performance.now();
      await recorder.close({ state: 'exited', lastExit: 'code 0' });
      expect(performance.now() - closing).toBeLessThan(1_200);
      expect(messages(lines, UNAVAILABLE)).toHaveLength(1);
    } finally {
      process.kill(server.pid(), 'SIGCONT');
      await closeAll();
      await server.stop();
    }
  });
});

describe('TLS', () => {
  let tls: TlsRedis;
  let server: RedisServer;
  let tlsPort: number;

  beforeAll(async () => {
    tls = await startTlsRedis({ password: PASSWORD });
    ({ server, tlsPort } = tls);
  });

  afterAll(async () => {
    await closeAll();
    await tls.stop();
  });

  it('writes the record over rediss://', async () => {
    const { recorder, lines } = start(`rediss://:${PASSWORD}@127.0.0.1:${tlsPort}/2`);
    await eventually(
      async () => ((await server.command('INFO', 'keyspace')).includes('db2:keys=2') ? true : undefined),
      'the record in db 2',
    );
    expect(recorder.connected).toBe(true);
    expect(lines[0]?.redis).toBe(`rediss://:***@127.0.0.1:${tlsPort}/2`);
  });

  it('refuses a plain connection to the TLS port as an outage, logged once', async () => {
    const { recorder, lines } = start(`redis://:${PASSWORD}@127.0.0.1:${tlsPort}`);
    await sleep(5 * INTERVAL_MS);
    expect(recorder.connected).toBe(false);
    expect(messages(lines, UNAVAILABLE)).toHaveLength(1);
  });
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() =>
        typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}

/** A redis-server on a given port, for Redis that comes after drain-init (the shared helper picks its own port). */
function spawnRedis(port: number): ChildProcess {
  return spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: 'ignore',
  });
}

function redisCli(port: number, ...args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const cli = spawn('redis-cli', ['-p', String(port), '--raw', ...args]);
    let out = '';
    cli.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    cli.once('error', reject);
    cli.once('close', () => resolve(out.trim()));
  });
}

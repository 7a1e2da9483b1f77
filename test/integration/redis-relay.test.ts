// The Redis relay between clients and a real redis-server: byte-identical pass-through (RESP2 and RESP3), TLS
// upstream, disconnects, bad input, back-pressure and connection limits.
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { splitInlineArguments } from '../../src/redis/resp-commands.js';
import { freePort, redisTestBed, startRedis, type RedisServer } from '../helpers/redis.js';
import { eventually, RawClient, redisCli, resp, show, startTestRelay, type TestRelay } from '../helpers/relay.js';
import { startTlsRedis, type TlsRedis } from '../helpers/tls.js';

const redis = redisTestBed({ extraArgs: ['--enable-debug-command', 'yes'] });
let relay: TestRelay;

beforeAll(async () => {
  relay = await startTestRelay(redis().port);
});

afterAll(async () => {
  await relay.relay.close();
});

/** The same bytes sent straight to redis-server and through the relay, on a flushed server each time. */
async function bothWays<T>(run: (port: number) => Promise<T>): Promise<{ direct: T; relayed: T }> {
  await redis().call('FLUSHALL');
  const direct = await run(redis().port);
  await redis().call('FLUSHALL');
  const relayed = await run(relay.port);
  return { direct, relayed };
}

async function rawExchange(port: number, bytes: string | Buffer): Promise<Buffer> {
  const client = await RawClient.connect(port);
  try {
    return await client.exchange(bytes);
  } finally {
    client.close();
  }
}

/** Connections redis-server has open, the caller's own included. */
async function redisClients(): Promise<number> {
  return (await redis().command('CLIENT', 'LIST')).split('\n').filter((line) => line.startsWith('id=')).length;
}

/** Commands for redis-cli, one per line (redis-cli 7.0 cannot read attributes or big numbers: see the pipeline test). */
const SCRIPT = [
  'SET s hello',
  'GET s',
  'APPEND s " world"',
  'GETRANGE s 0 4',
  'INCR n',
  'INCRBYFLOAT f 1.5',
  'MSET a 1 b 2',
  'MGET a b missing',
  'HSET h f1 v1 f2 v2',
  'HGETALL h',
  'HINCRBY h n 3',
  'LPUSH l a b c',
  'LRANGE l 0 -1',
  'RPOPLPUSH l l2',
  'SADD set x y z',
  'SMEMBERS set',
  'SISMEMBER set x',
  'ZADD z 1 a 2 b 3.5 c',
  'ZRANGE z 0 -1 WITHSCORES',
  'ZSCORE z c',
  'ZPOPMIN z',
  'TYPE h',
  'EXISTS s h nothing',
  'EXPIRE s 100',
  'TTL s',
  'SET w 1',
  'LPUSH w x',
  'NOSUCHCOMMAND a b',
  'GET',
  'SELECT 2',
  'SET indb2 yes',
  'SELECT 0',
  'GET indb2',
  'SELECT 2',
  'GET indb2',
  'SELECT 0',
  'CLIENT SETNAME relay-test',
  'CLIENT GETNAME',
  'ECHO "quoted arg"',
  'DEBUG PROTOCOL map',
  'DEBUG PROTOCOL set',
  'DEBUG PROTOCOL double',
  'DEBUG PROTOCOL verbatim',
  'DEBUG PROTOCOL true',
  'DEBUG PROTOCOL null',
  'DEBUG PROTOCOL push',
  'MULTI',
  'INCR n',
  'GET n',
  'EXEC',
  'MULTI',
  'SET discarded 1',
  'DISCARD',
  'GET discarded',
  'BRPOP nothing 0.1',
  'BLPOP l 1',
  'BLMOVE l2 l3 LEFT RIGHT 0.1',
  'LRANGE l3 0 -1',
  'BZPOPMIN z 0.1',
  'BZPOPMIN emptyz 0.1',
  "EVAL \"return {1, 2.5, {ok='fine'}, {err='bad'}}\" 0",
].join('\n');

describe('pass-through', () => {
  it.each([
    ['RESP2', []],
    ['RESP3', ['-3']],
  ])('gives redis-cli (%s) the same output as redis-server itself', async (_protocol, flags) => {
    const { direct, relayed } = await bothWays((port) => redisCli(port, ['--no-raw', ...flags], SCRIPT));
    expect(relayed).toBe(direct);
    // Not vacuous: the script reached Redis and got every kind of reply.
    for (const fragment of ['WRONGTYPE', "ERR unknown command 'NOSUCHCOMMAND'", 'relay-test', '"yes"', 'bad']) {
      expect(direct).toContain(fragment);
    }
    if (flags.length > 0) {
      expect(direct).toContain('(double) 3.141');
      expect(direct).toContain('Some real reply following the push reply');
    }
  });

  it('relays a pipeline of many commands in one write byte for byte, inline ones and HELLO 3 included', async () => {
    const commands = [
      ...Array.from({ length: 200 }, (_, i) => resp('SET', `k${i}`, `value ${i}`)),
      Buffer.from('PING\r\nGET k1\r\nECHO "a b"\r\n\r\n'),
      resp('MGET', 'k1', 'k2', 'nope'),
      resp('HELLO', '3'),
      resp('HSET', 'h', 'a', '1'),
      resp('HGETALL', 'h'),
      ...['attrib', 'push', 'bignum', 'verbatim', 'map', 'set', 'double', 'true', 'null'].map((type) =>
        resp('DEBUG', 'PROTOCOL', type),
      ),
      resp('ZADD', 'z', '1.5', 'm'),
      resp('ZSCORE', 'z', 'm'),
      resp('GET', 'nope'),
      resp('HELLO', '2'),
      resp('GET', 'nope'),
      resp('WRONGCOMMAND'),
    ];
    const { direct, relayed } = await bothWays((port) => rawExchange(port, Buffer.concat(commands)));
    const withoutClientId = (bytes: Buffer): string => bytes.toString('latin1').replace(/(\$2\r\nid\r\n:)\d+/g, '$1N');
    expect(withoutClientId(relayed)).toBe(withoutClientId(direct));
    expect(direct.toString()).toContain('%7\r\n');
    expect(direct.toString()).toContain('|1\r\n');
    expect(direct.toString()).toContain('(1234567999999999999999999999999999999\r\n');
  });

  it('relays MULTI/EXEC, DISCARD and a WATCH that aborts the transaction', async () => {
    const run = async (port: number): Promise<string> => {
      const client = await RawClient.connect(port);
      const first = await client.exchange(Buffer.concat([resp('SET', 'k', '1'), resp('WATCH', 'k')]));
      await redis().call('SET', 'k', 'changed');
      const second = await client.exchange(
        Buffer.concat([resp('MULTI'), resp('SET', 'k', '2'), resp('EXEC'), resp('GET', 'k')]),
      );
      const third = await client.exchange(
        Buffer.concat([
          resp('MULTI'),
          resp('INCR', 'c'),
          resp('DISCARD'),
          resp('MULTI'),
          resp('INCR', 'c'),
          resp('EXEC'),
        ]),
      );
      client.close();
      return [first, second, third].map((bytes) => bytes.toString('latin1')).join('|');
    };
    const { direct, relayed } = await bothWays(run);
    expect(relayed).toBe(direct);
    expect(direct).toContain('+QUEUED\r\n*-1\r\n$7\r\nchanged\r\n');
  });

  it.each([2, 3])('relays pub/sub in RESP%i: messages published on another connection arrive', async (protocol) => {
    const run = async (port: number): Promise<string> => {
      const subscriber = await RawClient.connect(port);
      subscriber.write(
        Buffer.concat([...(protocol === 3 ? [resp('HELLO', '3')] : []), resp('SUBSCRIBE', 'ch', 'other')]),
      );
      const confirmed = await subscriber.until((bytes) => bytes.toString().includes('other'), 'the subscriptions');
      await redis().call('PUBLISH', 'ch', 'first');
      await redis().call('PUBLISH', 'ch', 'second message');
      const messages = await subscriber.until((bytes) => bytes.toString().includes('second message'), 'the messages');
      subscriber.write(Buffer.concat([resp('UNSUBSCRIBE'), resp('PING')]));
      const tail = await subscriber.until((bytes) => bytes.toString().endsWith('PONG\r\n'), 'PONG');
      subscriber.close();
      return [confirmed, messages, tail]
        .map((bytes) => bytes.toString('latin1').replace(/(\$2\r\nid\r\n:)\d+/, '$1N'))
        .join('|');
    };
    const { direct, relayed } = await bothWays(run);
    expect(relayed).toBe(direct);
    expect(direct).toContain('second message');
  });

  it('relays blocking commands: nil after the timeout, the value when another connection pushes one', async () => {
    const client = await RawClient.connect(relay.port);
    const startedAt = performance.now();
    client.write(resp('BRPOP', 'empty', '0.5'));
    await client.expect('*-1\r\n');
    expect(performance.now() - startedAt).toBeGreaterThan(400);
    client.write(resp('BLPOP', 'bl', '10'));
    await new Promise((resolve) => setTimeout(resolve, 200));
    await redis().call('RPUSH', 'bl', 'pushed');
    await client.expect('*2\r\n$2\r\nbl\r\n$6\r\npushed\r\n');
    client.close();
  });

  it('relays values of several MB, in both directions, pipelined', async () => {
    const big = Buffer.alloc(8 * 1024 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7919) & 0xff;
    const client = await RawClient.connect(relay.port);
    const replies = await client.exchange(
      Buffer.concat([resp('SET', 'big', big), resp('GET', 'big'), resp('STRLEN', 'big'), resp('GET', 'big')]),
    );
    const bulk = Buffer.concat([Buffer.from(`$${big.length}\r\n`), big, Buffer.from('\r\n')]);
    expect(replies.equals(Buffer.concat([Buffer.from('+OK\r\n'), bulk, Buffer.from(`:${big.length}\r\n`), bulk]))).toBe(
      true,
    );
    client.close();
  });

  it('relays RESP3 client-side caching: the invalidation push arrives, replies stay in order', async () => {
    const client = await RawClient.connect(relay.port);
    await client.exchange(
      Buffer.concat([resp('HELLO', '3'), resp('CLIENT', 'TRACKING', 'on'), resp('GET', 'tracked')]),
    );
    await redis().call('SET', 'tracked', 'new');
    await client.expect('>2\r\n$10\r\ninvalidate\r\n*1\r\n$7\r\ntracked\r\n');
    expect((await client.exchange(resp('GET', 'tracked'))).toString()).toBe('$3\r\nnew\r\n');
    client.close();
  });

  it('splits inline commands as redis-server does', async () => {
    const client = await RawClient.connect(relay.port);
    for (const argument of ['"a b"', "'it\\'s'", '"\\x41\\x42\\n"', 'ab"c d"', '"tab\\there"', "''"]) {
      const line = `ECHO ${argument}`;
      const parsed = splitInlineArguments(Buffer.from(line, 'latin1'));
      const echoed = await client.exchange(`${line}\r\n`);
      const expected = parsed?.[1] ?? Buffer.alloc(0);
      expect(show(echoed)).toBe(
        show(Buffer.concat([Buffer.from(`$${expected.length}\r\n`), expected, Buffer.from('\r\n')])),
      );
    }
    client.close();
  });
});

describe('authentication and databases pass through', () => {
  let server: RedisServer;
  let secured: TestRelay;

  beforeAll(async () => {
    server = await startRedis({ password: 'requirepass-secret' });
    secured = await startTestRelay(server.port);
    await server.call('ACL', 'SETUSER', 'alice', 'on', '>alice-secret', '~*', '&*', '+@all');
  });

  afterAll(async () => {
    await secured.relay.close();
    await server.stop();
  });

  it('never authenticates by itself: the client AUTHs, with requirepass or as an ACL user', async () => {
    const client = await RawClient.connect(secured.port);
    client.write(resp('GET', 'k'));
    await client.expect('-NOAUTH Authentication required.\r\n');
    client.close();
    const authenticated = await RawClient.connect(secured.port);
    const replies = await authenticated.exchange(
      Buffer.concat([
        resp('AUTH', 'wrong'),
        resp('AUTH', 'requirepass-secret'),
        resp('ACL', 'WHOAMI'),
        resp('AUTH', 'alice', 'alice-secret'),
        resp('ACL', 'WHOAMI'),
        resp('SELECT', '3'),
        resp('SET', 'db3', 'x'),
        resp('CLIENT', 'SETNAME', 'worker-1'),
        resp('CLIENT', 'GETNAME'),
      ]),
    );
    expect(replies.toString()).toMatch(
      /^-WRONGPASS[^\r]*\r\n\+OK\r\n\$7\r\ndefault\r\n\+OK\r\n\$5\r\nalice\r\n\+OK\r\n\+OK\r\n\+OK\r\n\$8\r\nworker-1\r\n$/,
    );
    expect(await server.command('INFO', 'keyspace')).toContain('db3:keys=1');
    authenticated.close();
  });

  it('passes HELLO 3 with AUTH through', async () => {
    const client = await RawClient.connect(secured.port);
    const reply = (await client.exchange(resp('HELLO', '3', 'AUTH', 'alice', 'alice-secret'))).toString();
    expect(reply).toMatch(/^%7\r\n/);
    expect((await client.exchange(resp('ACL', 'WHOAMI'))).toString()).toBe('$5\r\nalice\r\n');
    client.close();
  });
});

describe('TLS to Redis (rediss://)', () => {
  let tls: TlsRedis;
  let tlsPort: number;
  let secure: TestRelay;

  beforeAll(async () => {
    tls = await startTlsRedis();
    tlsPort = tls.tlsPort;
    secure = await startTestRelay(tlsPort, { upstream: { host: '127.0.0.1', port: tlsPort, tls: true } });
  });

  afterAll(async () => {
    await secure.relay.close();
    await tls.stop();
  });

  it('speaks TLS to Redis and plain RESP to the client', async () => {
    const value = 'v'.repeat(3 * 1024 * 1024);
    const output = await redisCli(secure.port, [], `SET k ${value}\nSTRLEN k\nCLIENT INFO\n`);
    expect(output.split('\n').slice(0, 2)).toEqual(['OK', String(value.length)]);
    // redis-server sees the relay's connection on its TLS port.
    expect(output).toContain(`laddr=127.0.0.1:${tlsPort}`);
  });

  it('closes the client connection when the relay speaks plain RESP to a TLS port', async () => {
    const plainToTls = await startTestRelay(tlsPort);
    const client = await RawClient.connect(plainToTls.port);
    client.write(resp('PING'));
    await client.closed;
    expect(client.peek().length).toBe(0);
    expect(plainToTls.warnings().length).toBeLessThanOrEqual(1);
    await plainToTls.relay.close();
  });
});

describe('disconnects', () => {
  it('closes the Redis connection when the client cuts a multi-MB reply short; others go on', async () => {
    await redis().call('SETRANGE', 'huge', 32 * 1024 * 1024 - 1, 'x');
    const baseline = await redisClients();
    const other = await RawClient.connect(relay.port);
    await other.exchange(resp('PING'));
    const cutter = await RawClient.connect(relay.port);
    cutter.write(resp('GET', 'huge'));
    await cutter.until((bytes) => bytes.length > 0, 'the first bytes of the reply');
    cutter.close();
    await eventually(
      async () => ((await redisClients()) === baseline + 1 ? true : undefined),
      'the cut connection gone',
    );
    expect((await other.exchange(resp('STRLEN', 'huge'))).toString()).toBe(`:${32 * 1024 * 1024}\r\n`);
    other.close();
    await eventually(() => (relay.relay.stats().connectionsOpen === 0 ? true : undefined), 'no connection open');
  });

  it('closes the client connection when Redis goes away, and the Redis one when the client does', async () => {
    const client = await RawClient.connect(relay.port);
    await client.exchange(resp('CLIENT', 'SETNAME', 'to-be-killed'));
    await redis().call('CLIENT', 'KILL', 'SKIPME', 'yes', 'TYPE', 'normal');
    await client.closed;
    const second = await RawClient.connect(relay.port);
    await second.exchange(resp('PING'));
    const before = await redisClients();
    second.close();
    await eventually(
      async () => ((await redisClients()) === before - 1 ? true : undefined),
      'the Redis connection closed',
    );
  });

  it('delivers the last replies before Redis closes (QUIT), however large', async () => {
    await redis().call('SETRANGE', 'large', 16 * 1024 * 1024 - 1, 'x');
    const client = await RawClient.connect(relay.port);
    client.write(Buffer.concat([resp('GET', 'large'), resp('QUIT')]));
    await client.closed;
    const replies = client.take();
    expect(replies.length).toBe(`$${16 * 1024 * 1024}\r\n`.length + 16 * 1024 * 1024 + '\r\n+OK\r\n'.length);
    expect(replies.subarray(-8).toString()).toBe('x\r\n+OK\r\n');
  });

  it('closes a client connection at once when Redis cannot be reached, with one warning for many', async () => {
    const nowhere = await startTestRelay(await freePort());
    for (let attempt = 0; attempt < 5; attempt++) {
      const client = await RawClient.connect(nowhere.port);
      client.write(resp('PING'));
      await client.closed;
      expect(client.peek().length).toBe(0);
    }
    expect(nowhere.warnings()).toHaveLength(1);
    expect(nowhere.warnings()[0]).toMatchObject({
      msg: "could not connect to Redis for a worker's connection; closed it",
      reason: 'ECONNREFUSED',
    });
    await nowhere.relay.close();
  });
});

describe('bad input from a client', () => {
  it.each([
    ['garbage after a multibulk header', '*1\r\nXYZ\r\n', "-ERR Protocol error: expected '$', got 'X'\r\n"],
    ['a 600 MB bulk length', '*2\r\n$3\r\nSET\r\n$600000000\r\n', '-ERR Protocol error: invalid bulk length\r\n'],
    ['a non-number as multibulk length', '*abc\r\n', '-ERR Protocol error: invalid multibulk length\r\n'],
    ['unbalanced quotes', 'SET "a\r\n', '-ERR Protocol error: unbalanced quotes in request\r\n'],
  ])('%s: an error reply as redis-server gives, the connection closed, one warning', async (_name, input, reply) => {
    const bad = await startTestRelay(redis().port);
    const good = await RawClient.connect(bad.port);
    for (let attempt = 0; attempt < 3; attempt++) {
      const client = await RawClient.connect(bad.port);
      client.write(input);
      await client.closed;
      expect(client.take().toString('latin1')).toBe(reply);
    }
    expect(bad.warnings()).toHaveLength(1);
    expect(bad.warnings()[0]?.reason).toBe(reply.slice(5, -2));
    expect(bad.relay.stats().protocolErrors).toBe(3);
    // The relay and its other connections are unaffected.
    expect((await good.exchange(resp('PING'))).toString()).toBe('+PONG\r\n');
    good.close();
    await bad.relay.close();
  });

  it('refuses an over-long inline command (64 KiB) without buffering what follows', async () => {
    const buffersBefore = process.memoryUsage().arrayBuffers;
    const client = await RawClient.connect(relay.port);
    const chunk = Buffer.alloc(1024 * 1024, 0x61);
    // Up to 100 MB, as fast as the relay takes it.
    for (let i = 0; i < 100 && !client.socket.destroyed; i++) {
      if (!client.socket.write(chunk))
        await new Promise((resolve) => client.socket.once('drain', resolve).once('close', resolve));
    }
    await client.closed;
    expect(client.take().toString()).toBe('-ERR Protocol error: too big inline request\r\n');
    expect(process.memoryUsage().arrayBuffers - buffersBefore).toBeLessThan(16 * 1024 * 1024);
  });

  it('closes the Redis connection after half a command and a close, without a warning', async () => {
    const quiet = await startTestRelay(redis().port);
    const baseline = await redisClients();
    const client = await RawClient.connect(quiet.port);
    client.write('*2\r\n$3\r\nGET\r\n$5\r\nab');
    await eventually(async () => ((await redisClients()) === baseline + 1 ? true : undefined), 'the Redis connection');
    client.socket.end();
    await eventually(
      async () => ((await redisClients()) === baseline ? true : undefined),
      'the Redis connection closed',
    );
    expect(quiet.warnings()).toEqual([]);
    await quiet.relay.close();
  });

  it('serves 1,000 connections at once', async () => {
    const clients = await Promise.all(Array.from({ length: 1000 }, () => RawClient.connect(relay.port)));
    const replies = await Promise.all(clients.map((client, i) => client.exchange(resp('ECHO', `c${i}`))));
    replies.forEach((reply, i) => expect(reply.toString()).toBe(`$${`c${i}`.length}\r\nc${i}\r\n`));
    for (const client of clients) client.close();
    await eventually(() => (relay.relay.stats().connectionsOpen === 0 ? true : undefined), 'all closed', 20_000);
  });

  it('refuses connections beyond its cap cleanly, with one warning, and serves the others', async () => {
    const capped = await startTestRelay(redis().port, { maxConnections: 50 });
    const clients = await Promise.all(Array.from({ length: 80 }, () => RawClient.connect(capped.port)));
    const outcomes = await Promise.all(
      clients.map((client) =>
        client.exchange(resp('PING'), 5000).then(
          (reply) => reply.toString(),
          () => 'refused',
        ),
      ),
    );
    expect(outcomes.filter((outcome) => outcome === '+PONG\r\n')).toHaveLength(50);
    expect(outcomes.filter((outcome) => outcome === 'refused')).toHaveLength(30);
    expect(capped.relay.stats().connectionsRefused).toBe(30);
    expect(capped.warnings()).toHaveLength(1);
    expect(capped.warnings()[0]).toMatchObject({ maxConnections: 50 });
    for (const client of clients) client.close();
    await capped.relay.close();
  });
});

describe('back-pressure', () => {
  it('does not buffer a huge reply a client does not read', async () => {
    const size = 64 * 1024 * 1024;
    await redis().call('SETRANGE', 'bp', size - 1, 'x');
    const socket = createConnection({ host: '127.0.0.1', port: relay.port });
    let received = 0;
    const total = 4 * (`$${size}\r\n`.length + size + 2);
    const all = new Promise<void>((resolve) =>
      socket.on('data', (chunk: Buffer) => {
        received += chunk.length;
        if (received >= total) resolve();
      }),
    );
    socket.pause();
    const buffersBefore = process.memoryUsage().arrayBuffers;
    // 256 MB of replies that the client leaves unread for a second.
    socket.write(Buffer.concat([resp('GET', 'bp'), resp('GET', 'bp'), resp('GET', 'bp'), resp('GET', 'bp')]));
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(process.memoryUsage().arrayBuffers - buffersBefore).toBeLessThan(16 * 1024 * 1024);
    socket.resume();
    await all;
    expect(received).toBe(total);
    socket.destroy();
  });
});

describe('back-pressure on commands', () => {
  it('stops reading a client that pipelines without reading replies once 100,000 are owed', async () => {
    await redis().call('CONFIG', 'RESETSTAT');
    const value = 'v'.repeat(200);
    await redis().call('SET', 'value', value);
    const commands = 400_000;
    const reply = `$${value.length}\r\n${value}\r\n`.length;
    const socket = createConnection({ host: '127.0.0.1', port: relay.port });
    let received = 0;
    const all = new Promise<void>((resolve) =>
      socket.on('data', (chunk: Buffer) => {
        received += chunk.length;
        if (received >= reply * commands) resolve();
      }),
    );
    socket.pause();
    socket.write(Buffer.concat(Array.from({ length: commands }, () => resp('GET', 'value'))));
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const calls = async (): Promise<number> =>
      Number(/^cmdstat_get:calls=(\d+)/m.exec(await redis().command('INFO', 'commandstats'))?.[1] ?? 0);
    // 100,000 owed, plus the replies that fit in the socket buffers (a few MB), plus one chunk of commands.
    expect(await calls()).toBeLessThan(200_000);
    socket.resume();
    await all;
    expect(received).toBe(reply * commands);
    expect(await calls()).toBe(commands);
    socket.destroy();
  });
});

describe('listening', () => {
  it('listens on a Unix socket in a private directory, removed on close', async () => {
    const parent = mkdtempSync(join(tmpdir(), 'drain-init-relay-unix-'));
    const unix = await startTestRelay(redis().port, { listen: { unixSocketUnder: parent } });
    const path = unix.relay.path ?? '';
    expect(unix.relay.port).toBeUndefined();
    expect(statSync(join(path, '..')).mode & 0o777).toBe(0o700);
    const output = await redisCli(0, ['-s', path], 'PING\n');
    expect(output).toBe('PONG');
    await unix.relay.close();
    expect(() => statSync(path)).toThrow();
    rmSync(parent, { recursive: true, force: true });
  });

  it('listens on a given port of 127.0.0.1', async () => {
    const port = await freePort();
    const fixed = await startTestRelay(redis().port, { listen: { port } });
    expect(fixed.relay.port).toBe(port);
    expect(await redisCli(port, [], 'PING\n')).toBe('PONG');
    await fixed.relay.close();
  });

  it('keeps nothing alive: its listening socket and its sockets are unref()ed', async () => {
    const tcpHandles = (): number => process.getActiveResourcesInfo().filter((type) => type.startsWith('TCP')).length;
    // The helper's short connections to redis-server close first.
    await new Promise((resolve) => setTimeout(resolve, 200));
    const before = tcpHandles();
    const idle = await startTestRelay(redis().port);
    expect(tcpHandles()).toBe(before);
    const client = await RawClient.connect(idle.port);
    await client.exchange(resp('PING'));
    // The client's own socket only: the relay's two sockets of this connection do not count.
    expect(tcpHandles()).toBe(before + 1);
    client.close();
    await idle.relay.close();
  });

  it('close() stops listening and ends every connection', async () => {
    const closing = await startTestRelay(redis().port);
    const client = await RawClient.connect(closing.port);
    client.write(resp('BLPOP', 'never', '0'));
    await eventually(
      async () => ((await redis().command('CLIENT', 'LIST')).includes('cmd=blpop') ? true : undefined),
      'BLPOP',
    );
    await closing.relay.close();
    await client.closed;
    await expect(
      new Promise((resolve, reject) => {
        const socket = createConnection({ host: '127.0.0.1', port: closing.port });
        socket.once('connect', () => resolve('connected'));
        socket.once('error', reject);
      }),
    ).rejects.toThrow('ECONNREFUSED');
  });

  it('counts connections, commands and bytes', async () => {
    const counted = await startTestRelay(redis().port);
    const client = await RawClient.connect(counted.port);
    const sent = Buffer.concat([resp('SET', 'a', '1'), resp('GET', 'a'), Buffer.from('PING\r\n')]);
    client.write(sent);
    await client.until((bytes) => bytes.toString().endsWith('+PONG\r\n'), 'PONG');
    expect(counted.relay.stats()).toMatchObject({
      connectionsOpen: 1,
      connectionsTotal: 1,
      commandsRelayed: 3,
      commandsTakenOver: 0,
      protocolErrors: 0,
      bytesFromWorkers: sent.length,
      bytesToWorkers: '+OK\r\n$1\r\n1\r\n+PONG\r\n'.length,
    });
    client.close();
    await counted.relay.close();
  });
});

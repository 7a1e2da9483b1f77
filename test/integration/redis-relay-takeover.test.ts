// The relay's hooks against a real redis-server: a takeover of BRPOP answered from the hook's own commands,
// a swap (the hook's command in the BRPOP's place, answered without a promise), ordering with pipelined
// commands, disconnects during the wait, protocols, and the observer.
import { createServer, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  ConnectionClosedError,
  type CommandSwap,
  type RelayedCommand,
  type RelayHooks,
  type ReplyOutcome,
  type TakeoverHandler,
  type TakeoverSession,
} from '../../src/redis/relay-hooks.js';
import { encodeBulkArray, encodeNullArray } from '../../src/redis/resp-encode.js';
import { RespError, type RespValue } from '../../src/redis/resp-values.js';
import { redisTestBed } from '../helpers/redis.js';
import { eventually, RawClient, resp, startTestRelay, type TestRelay } from '../helpers/relay.js';

const redis = redisTestBed();
let relay: TestRelay;
/** What the test in progress does with a BRPOP; undefined forwards it. */
let onBrpop: TakeoverHandler | CommandSwap | undefined;
let observed: RelayedCommand[] = [];
let takeoversOffered = 0;

const hooks: RelayHooks = {
  capture: (name) =>
    name === 'BRPOP'
      ? 4096
      : name === 'HSET'
        ? { firstArgument: (key) => (key.toString().endsWith(':work') ? 65_536 : 0) }
        : 0,
  observe: (command) => void observed.push(command),
  takeover: (command) => {
    if (command.name !== 'BRPOP') return undefined;
    takeoversOffered++;
    return onBrpop;
  },
};

beforeAll(async () => {
  relay = await startTestRelay(redis().port, { hooks });
});

afterAll(async () => {
  await relay.relay.close();
});

beforeEach(() => {
  onBrpop = undefined;
  observed = [];
  takeoversOffered = 0;
  relay.lines.length = 0;
});

/** Waits, unless the session's connection closes first (then rejects with its ConnectionClosedError). */
function wait(session: TakeoverSession, ms: number): Promise<void> {
  return sleep(ms, undefined, { signal: session.signal }).catch(() => {
    throw session.signal.reason as Error;
  });
}

/** A fetch as drain-init will do it: RPOP each key in turn, retry every 50 ms until the BRPOP's timeout. */
const fetch: TakeoverHandler = async (session) => {
  const args = session.command.args ?? [];
  const keys = args.slice(0, -1);
  const deadline = performance.now() + Number(args.at(-1)?.toString()) * 1000;
  for (;;) {
    for (const key of keys) {
      const value = await session.send(['RPOP', key]);
      if (Buffer.isBuffer(value)) {
        await session.reply(encodeBulkArray([key, value]));
        return;
      }
    }
    if (performance.now() >= deadline) {
      await session.reply(encodeNullArray);
      return;
    }
    await wait(session, 50);
  }
};

/** A promise and its resolve function (Promise.withResolvers is ES2024). */
function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve: (value: T) => void = () => {};
  const promise = new Promise<T>((settle) => (resolve = settle));
  return { promise, resolve };
}

async function commandCalls(name: string): Promise<number> {
  const stats = await redis().command('INFO', 'commandstats');
  return Number(new RegExp(`^cmdstat_${name}:calls=(\\d+)`, 'm').exec(stats)?.[1] ?? 0);
}

async function redisClients(): Promise<number> {
  return (await redis().command('CLIENT', 'LIST')).split('\n').filter((line) => line.startsWith('id=')).length;
}

describe('takeover', () => {
  it('answers a BRPOP from its own commands after a wait; Redis never sees the BRPOP', async () => {
    await redis().call('CONFIG', 'RESETSTAT');
    onBrpop = fetch;
    const worker = await RawClient.connect(relay.port);
    worker.write(resp('BRPOP', 'queue:a', 'queue:b', '2'));
    await sleep(300);
    await redis().call('LPUSH', 'queue:b', '{"jid":"1"}');
    await worker.expect('*2\r\n$7\r\nqueue:b\r\n$11\r\n{"jid":"1"}\r\n');
    expect(await commandCalls('brpop')).toBe(0);
    expect(await commandCalls('rpop')).toBeGreaterThan(2);
    expect(relay.relay.stats().commandsTakenOver).toBeGreaterThan(0);
    worker.close();
  });

  it('answers nil in the protocol in force when the reply is written: RESP2 *-1, RESP3 _', async () => {
    onBrpop = fetch;
    const worker = await RawClient.connect(relay.port);
    worker.write(resp('BRPOP', 'empty', '0.1'));
    await worker.expect('*-1\r\n');
    // A HELLO that fails changes nothing.
    worker.write(Buffer.concat([resp('HELLO', '3', 'AUTH', 'nobody', 'wrong'), resp('BRPOP', 'empty', '0.1')]));
    expect((await worker.until((bytes) => bytes.toString().endsWith('*-1\r\n'), 'nil')).toString()).toMatch(
      /^-WRONGPASS.*\r\n\*-1\r\n$/s,
    );
    worker.write(Buffer.concat([resp('HELLO', '3'), resp('BRPOP', 'empty', '0.1')]));
    expect((await worker.until((bytes) => bytes.toString().endsWith('_\r\n'), 'nil')).toString()).toMatch(
      /^%7\r\n.*_\r\n$/s,
    );
    worker.write(Buffer.concat([resp('HELLO', '2'), resp('BRPOP', 'empty', '0.1')]));
    expect((await worker.until((bytes) => bytes.toString().endsWith('*-1\r\n'), 'nil')).toString()).toMatch(
      /^\*14\r\n.*\*-1\r\n$/s,
    );
    worker.write(Buffer.concat([resp('HELLO', '3'), resp('RESET'), resp('BRPOP', 'empty', '0.1')]));
    expect((await worker.until((bytes) => bytes.toString().endsWith('*-1\r\n'), 'nil')).toString()).toMatch(
      /^%7\r\n.*\+RESET\r\n\*-1\r\n$/s,
    );
    worker.close();
  });

  it('encodes a reply given at once with the protocol of when it is written, after a pipelined HELLO', async () => {
    onBrpop = async (session) => {
      expect(session.protocol).toBe(2);
      await session.reply(encodeNullArray);
    };
    const worker = await RawClient.connect(relay.port);
    // HELLO 3 and the BRPOP in one write: HELLO's reply is not in when the hook replies.
    worker.write(Buffer.concat([resp('HELLO', '3'), resp('BRPOP', 'empty', '2')]));
    expect((await worker.until((bytes) => bytes.toString().endsWith('_\r\n'), 'nil')).toString()).toMatch(
      /^%7\r\n.*\r\n_\r\n$/s,
    );
    worker.close();
  });

  it('never writes a reply into the middle of a push', async () => {
    const release = deferred<void>();
    const replied = deferred<ReplyOutcome>();
    onBrpop = async (session) => {
      await release.promise;
      replied.resolve(await session.reply(encodeNullArray));
    };
    // A 32 MB key name makes a 32 MB invalidation push, which the worker does not read at first.
    const key = 'k'.repeat(32 * 1024 * 1024);
    const worker = await RawClient.connect(relay.port);
    await worker.exchange(Buffer.concat([resp('HELLO', '3'), resp('CLIENT', 'TRACKING', 'on'), resp('GET', key)]));
    worker.write(resp('BRPOP', 'q', '2'));
    await eventually(() => (takeoversOffered === 1 ? true : undefined), 'the takeover');
    worker.socket.pause();
    await redis().call('SET', key, 'changed');
    await sleep(300);
    // The push is half through the relay when the reply is given.
    release.resolve();
    await sleep(100);
    worker.socket.resume();
    const push = Buffer.concat([
      Buffer.from(`>2\r\n$10\r\ninvalidate\r\n*1\r\n$${key.length}\r\n`),
      Buffer.from(key),
      Buffer.from('\r\n_\r\n'),
    ]);
    await eventually(() => (worker.receivedBytes >= push.length ? true : undefined), 'the push and the reply');
    expect(worker.take().equals(push)).toBe(true);
    expect(await replied.promise).toBe('flushed');
    worker.close();
  });

  it('keeps the order of pipelined commands: those before run first, those after wait for the reply', async () => {
    let sawBefore: RespValue | undefined;
    onBrpop = async (session) => {
      sawBefore = await session.send(['GET', 'before']);
      await session.send(['SET', 'after', 'set by the hook']);
      await wait(session, 200);
      await session.reply(encodeBulkArray(['queue:a', 'job']));
    };
    const worker = await RawClient.connect(relay.port);
    worker.write(
      Buffer.concat([
        resp('SET', 'before', '1'),
        resp('BRPOP', 'queue:a', '2'),
        resp('GET', 'after'),
        resp('INCR', 'counter'),
      ]),
    );
    await worker.expect('+OK\r\n*2\r\n$7\r\nqueue:a\r\n$3\r\njob\r\n$15\r\nset by the hook\r\n:1\r\n');
    expect(sawBefore).toEqual(Buffer.from('1'));
    worker.close();
  });

  it('writes a reply given early after the replies owed before it', async () => {
    let outcome: Promise<ReplyOutcome> | undefined;
    onBrpop = async (session) => {
      outcome = session.reply(encodeBulkArray(['q', 'at once']));
    };
    const worker = await RawClient.connect(relay.port);
    const startedAt = performance.now();
    worker.write(Buffer.concat([resp('BLPOP', 'slow', '0.5'), resp('BRPOP', 'q', '2'), resp('PING')]));
    await worker.expect('*-1\r\n*2\r\n$1\r\nq\r\n$7\r\nat once\r\n+PONG\r\n');
    expect(performance.now() - startedAt).toBeGreaterThan(400);
    expect(await outcome).toBe('flushed');
    worker.close();
  });

  it('takes over several pipelined BRPOPs in turn', async () => {
    onBrpop = async (session) => {
      await session.reply(encodeBulkArray([session.command.args?.[0] ?? '', 'x']));
    };
    const worker = await RawClient.connect(relay.port);
    worker.write(Buffer.concat([resp('BRPOP', 'a', '2'), resp('BRPOP', 'b', '2'), resp('PING')]));
    await worker.expect('*2\r\n$1\r\na\r\n$1\r\nx\r\n*2\r\n$1\r\nb\r\n$1\r\nx\r\n+PONG\r\n');
    expect(takeoversOffered).toBe(2);
    worker.close();
  });

  it('passes pushes through during a takeover, also between a hook command and its reply', async () => {
    let hookSaw: RespValue | undefined;
    onBrpop = async (session) => {
      // Tracking without NOLOOP: this SET invalidates the worker's own cached key, a push before +OK.
      hookSaw = await session.send(['SET', 'tracked', 'by the hook']);
      await wait(session, 300);
      await session.reply(encodeNullArray);
    };
    const worker = await RawClient.connect(relay.port);
    await worker.exchange(
      Buffer.concat([resp('HELLO', '3'), resp('CLIENT', 'TRACKING', 'on'), resp('GET', 'tracked')]),
    );
    worker.write(resp('BRPOP', 'q', '2'));
    const push = '>2\r\n$10\r\ninvalidate\r\n*1\r\n$7\r\ntracked\r\n';
    await worker.expect(push);
    await worker.exchange(resp('PING'));
    expect(hookSaw).toEqual(Buffer.from('OK'));
    // The takeover's reply came before PING's; then the connection still matches replies.
    onBrpop = async (session) => void (await session.reply(encodeNullArray));
    expect((await worker.exchange(resp('BRPOP', 'q', '1'))).toString()).toBe('_\r\n');
    worker.close();
  });

  it('rejects a hook command that gets an error reply, with the error', async () => {
    let failure: unknown;
    onBrpop = async (session) => {
      await session.send(['SET', 'text', 'abc']);
      failure = await session.send(['INCR', 'text']).catch((error: unknown) => error);
      await session.reply(encodeNullArray);
    };
    const worker = await RawClient.connect(relay.port);
    worker.write(resp('BRPOP', 'q', '2'));
    await worker.expect('*-1\r\n');
    expect(failure).toBeInstanceOf(RespError);
    expect((failure as RespError).message).toBe('ERR value is not an integer or out of range');
    worker.close();
  });

  it('forwards the command after all when the hook says so', async () => {
    onBrpop = async (session) => {
      await wait(session, 100);
      session.forward();
    };
    await redis().call('CONFIG', 'RESETSTAT');
    await redis().call('LPUSH', 'q', 'real');
    const worker = await RawClient.connect(relay.port);
    expect((await worker.exchange(resp('BRPOP', 'q', '1'))).toString()).toBe('*2\r\n$1\r\nq\r\n$4\r\nreal\r\n');
    expect(await commandCalls('brpop')).toBe(1);
    worker.close();
  });
});

describe('swap', () => {
  /** A swap of the BRPOP for an RPOP of its first key, answered as BRPOP would; what it was told. */
  function rpopSwap(): { swap: CommandSwap; answers: unknown[]; outcomes: ReplyOutcome[] } {
    const answers: unknown[] = [];
    const outcomes: ReplyOutcome[] = [];
    const swap: CommandSwap = {
      send: encodeBulkArray(['RPOP', 'queue:a']),
      answer: (reply) => {
        answers.push(reply);
        return Buffer.isBuffer(reply) ? encodeBulkArray(['queue:a', reply]) : encodeNullArray(2);
      },
      settled: (outcome) => void outcomes.push(outcome),
    };
    return { swap, answers, outcomes };
  }

  it("sends its command in the BRPOP's place and writes its answer in order with pipelined commands", async () => {
    await redis().call('CONFIG', 'RESETSTAT');
    await redis().call('LPUSH', 'queue:a', 'job');
    const { swap, outcomes } = rpopSwap();
    onBrpop = swap;
    const worker = await RawClient.connect(relay.port);
    worker.write(
      Buffer.concat([resp('SET', 'before', '1'), resp('BRPOP', 'queue:a', '2'), resp('LLEN', 'queue:a'), resp('PING')]),
    );
    await worker.expect('+OK\r\n*2\r\n$7\r\nqueue:a\r\n$3\r\njob\r\n:0\r\n+PONG\r\n');
    await eventually(() => (outcomes.length > 0 ? true : undefined), 'the outcome');
    expect(outcomes).toEqual(['flushed']);
    expect(await commandCalls('brpop')).toBe(0);
    expect(relay.relay.stats().commandsTakenOver).toBeGreaterThan(0);
    worker.close();
  });

  it('goes on as a handler when its answer is one: the session sends and replies, then the held commands run', async () => {
    let answered: unknown;
    onBrpop = {
      send: encodeBulkArray(['RPOP', 'queue:empty']),
      answer: (reply) => {
        answered = reply;
        return async (session) => {
          await session.send(['SET', 'after', 'set by the handler']);
          await wait(session, 100);
          expect(await session.reply(encodeBulkArray(['queue:empty', 'late']))).toBe('flushed');
        };
      },
      settled: () => expect.unreachable('a handler reply is told by its session'),
    };
    const worker = await RawClient.connect(relay.port);
    worker.write(Buffer.concat([resp('BRPOP', 'queue:empty', '2'), resp('GET', 'after')]));
    await worker.expect('*2\r\n$11\r\nqueue:empty\r\n$4\r\nlate\r\n$18\r\nset by the handler\r\n');
    expect(answered).toBeNull();
    worker.close();
  });

  it('gets an error reply as a RespError', async () => {
    await redis().call('SET', 'queue:a', 'a string');
    const { swap, answers } = rpopSwap();
    onBrpop = swap;
    const worker = await RawClient.connect(relay.port);
    expect((await worker.exchange(resp('BRPOP', 'queue:a', '2'))).toString()).toBe('*-1\r\n');
    expect(answers).toHaveLength(1);
    expect(answers[0]).toBeInstanceOf(RespError);
    expect((answers[0] as RespError).message).toMatch(/^WRONGTYPE/);
    await redis().call('DEL', 'queue:a');
    worker.close();
  });

  it('is told of a connection that closed before the reply (ConnectionClosedError), and never of an outcome', async () => {
    const outcomes: ReplyOutcome[] = [];
    const answered = deferred<unknown>();
    onBrpop = {
      send: encodeBulkArray(['BLPOP', 'queue:never', '5']),
      answer: (reply) => {
        answered.resolve(reply);
        return encodeNullArray(2);
      },
      settled: (outcome) => void outcomes.push(outcome),
    };
    const worker = await RawClient.connect(relay.port);
    worker.write(resp('BRPOP', 'queue:never', '5'));
    await eventually(() => (takeoversOffered === 1 ? true : undefined), 'the swap');
    worker.close();
    const reply = await answered.promise;
    expect(reply).toBeInstanceOf(ConnectionClosedError);
    expect((reply as ConnectionClosedError).closedBy).toBe('worker');
    await sleep(50);
    expect(outcomes).toEqual([]);
  });

  it('carries on with a warning when its settled() throws', async () => {
    await redis().call('LPUSH', 'queue:a', 'job');
    onBrpop = {
      ...rpopSwap().swap,
      settled: () => {
        throw new Error('no record');
      },
    };
    const worker = await RawClient.connect(relay.port);
    worker.write(resp('BRPOP', 'queue:a', '2'));
    await worker.expect('*2\r\n$7\r\nqueue:a\r\n$3\r\njob\r\n');
    expect((await worker.exchange(resp('PING'))).toString()).toBe('+PONG\r\n');
    expect(relay.warnings().map((line) => line.msg)).toEqual(['a Redis relay hook threw; carried on without it']);
    worker.close();
  });

  it('closes the connection with a warning when its answer throws', async () => {
    await redis().call('LPUSH', 'queue:a', 'job');
    onBrpop = {
      send: encodeBulkArray(['RPOP', 'queue:a']),
      answer: () => {
        throw new Error('no answer');
      },
      settled: () => {},
    };
    const worker = await RawClient.connect(relay.port);
    worker.write(resp('BRPOP', 'queue:a', '2'));
    await worker.closed;
    expect(worker.peek().length).toBe(0);
    expect(relay.warnings().map((line) => line.msg)).toContain(
      "a takeover of a worker's Redis command failed; closed the connection",
    );
  });
});

describe('takeover and disconnects', () => {
  it('aborts the session when the worker goes away during the wait; its reply is not sent', async () => {
    const baseline = await redisClients();
    const ended = deferred<{ reason: unknown; outcome: ReplyOutcome }>();
    onBrpop = async (session) => {
      const reason = await wait(session, 10_000).catch((error: unknown) => error);
      ended.resolve({ reason, outcome: await session.reply(encodeNullArray) });
    };
    const worker = await RawClient.connect(relay.port);
    worker.write(resp('BRPOP', 'q', '2'));
    await eventually(() => (takeoversOffered === 1 ? true : undefined), 'the takeover');
    worker.close();
    const { reason, outcome } = await ended.promise;
    expect(reason).toBeInstanceOf(ConnectionClosedError);
    expect((reason as ConnectionClosedError).closedBy).toBe('worker');
    expect(outcome).toBe('not-sent');
    await eventually(
      async () => ((await redisClients()) === baseline ? true : undefined),
      'its Redis connection closed',
    );
    expect(relay.warnings()).toEqual([]);
  });

  it('gives a handler that first asks for its signal after the worker went away one already aborted', async () => {
    const release = deferred<void>();
    const asked = deferred<AbortSignal>();
    onBrpop = async (session) => {
      await release.promise;
      asked.resolve(session.signal);
      await session.reply(encodeNullArray);
    };
    const open = relay.relay.stats().connectionsOpen;
    const worker = await RawClient.connect(relay.port);
    worker.write(resp('BRPOP', 'q', '2'));
    await eventually(() => (takeoversOffered === 1 ? true : undefined), 'the takeover');
    worker.close();
    await eventually(() => (relay.relay.stats().connectionsOpen === open ? true : undefined), 'the close');
    release.resolve();
    const signal = await asked.promise;
    expect(signal.aborted).toBe(true);
    expect((signal.reason as ConnectionClosedError).closedBy).toBe('worker');
  });

  it('aborts the session and closes the worker connection when Redis goes away during the wait', async () => {
    const ended = deferred<unknown>();
    onBrpop = async (session) => {
      ended.resolve(await wait(session, 10_000).catch((error: unknown) => error));
    };
    const worker = await RawClient.connect(relay.port);
    await worker.exchange(resp('CLIENT', 'SETNAME', 'doomed'));
    worker.write(resp('BRPOP', 'q', '2'));
    await eventually(() => (takeoversOffered === 1 ? true : undefined), 'the takeover');
    const line = (await redis().command('CLIENT', 'LIST')).split('\n').find((entry) => entry.includes('name=doomed'));
    await redis().call('CLIENT', 'KILL', 'ID', /id=(\d+)/.exec(line ?? '')?.[1] ?? '0');
    expect(((await ended.promise) as ConnectionClosedError).closedBy).toBe('upstream');
    await worker.closed;
    expect(worker.peek().length).toBe(0);
  });

  it('rejects a hook command in flight when Redis goes away', async () => {
    const failure = deferred<unknown>();
    onBrpop = async (session) => {
      failure.resolve(await session.send(['BLPOP', 'never', '0']).catch((error: unknown) => error));
    };
    const worker = await RawClient.connect(relay.port);
    worker.write(resp('BRPOP', 'q', '2'));
    await eventually(
      async () => ((await redis().command('CLIENT', 'LIST')).includes('cmd=blpop') ? true : undefined),
      'BLPOP',
    );
    await redis().call('CLIENT', 'KILL', 'SKIPME', 'yes', 'TYPE', 'normal');
    expect(((await failure.promise) as ConnectionClosedError).closedBy).toBe('upstream');
    await worker.closed;
  });

  it.each<[string, TakeoverHandler]>([
    [
      'throws before its reply',
      async () => {
        throw new Error('fetch script failed');
      },
    ],
    ['returns without a reply', async () => {}],
  ])('closes the worker connection when the handler %s, with a warning', async (_case, handler) => {
    // A relay of its own: warnings of a kind are logged once a minute.
    const failing = await startTestRelay(redis().port, { hooks: { ...hooks, takeover: () => handler } });
    const worker = await RawClient.connect(failing.port);
    const other = await RawClient.connect(failing.port);
    worker.write(resp('BRPOP', 'q', '2'));
    await worker.closed;
    expect(worker.peek().length).toBe(0);
    expect(failing.warnings().map((line) => line.msg)).toEqual([
      "a takeover of a worker's Redis command failed; closed the connection",
    ]);
    expect((await other.exchange(resp('PING'))).toString()).toBe('+PONG\r\n');
    other.close();
    await failing.relay.close();
  });
});

describe('limits and misbehaving servers', () => {
  it('closes the connection when a reply to a hook command exceeds 64 MiB, with a warning', async () => {
    await redis().call('SETRANGE', 'too-big', 64 * 1024 * 1024, 'x');
    const failure = deferred<unknown>();
    const limited = await startTestRelay(redis().port, {
      hooks: {
        ...hooks,
        takeover: () => async (session) => {
          failure.resolve(await session.send(['GET', 'too-big']).catch((error: unknown) => error));
        },
      },
    });
    const worker = await RawClient.connect(limited.port);
    worker.write(resp('BRPOP', 'q', '2'));
    await worker.closed;
    expect(((await failure.promise) as ConnectionClosedError).closedBy).toBe('takeover');
    expect(limited.warnings().map((line) => line.msg)).toEqual([
      "a reply to a takeover's own command is too large; closed the connection",
    ]);
    await limited.relay.close();
  });

  it('aborts a takeover when the relay closes', async () => {
    const ended = deferred<unknown>();
    const closing = await startTestRelay(redis().port, {
      hooks: {
        ...hooks,
        takeover: () => async (session) => ended.resolve(await wait(session, 10_000).catch((error: unknown) => error)),
      },
    });
    const worker = await RawClient.connect(closing.port);
    worker.write(resp('BRPOP', 'q', '2'));
    await sleep(100);
    await closing.relay.close();
    expect(((await ended.promise) as ConnectionClosedError).closedBy).toBe('relay');
    await worker.closed;
  });

  // Real Redis cannot be made to send these: a plain TCP server stands in for it.
  async function fakeRedis(answer: (socket: Socket) => void): Promise<{ port: number; close: () => void }> {
    const server = createServer((socket) => {
      socket.on('error', () => {});
      socket.once('data', () => answer(socket));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    return {
      port: typeof address === 'object' && address !== null ? address.port : 0,
      close: () => void server.close(),
    };
  }

  it('relays a reply nobody asked for and stops matching on that connection, with a warning', async () => {
    const server = await fakeRedis((socket) => socket.write('+PONG\r\n+UNSOLICITED\r\n'));
    const confused = await startTestRelay(server.port, { hooks: { ...hooks, takeover: () => fetch } });
    const worker = await RawClient.connect(confused.port);
    worker.write(resp('PING'));
    await worker.expect('+PONG\r\n+UNSOLICITED\r\n');
    // Pass-through from now on: no takeover.
    worker.write(resp('BRPOP', 'q', '1'));
    await sleep(100);
    expect(confused.relay.stats().commandsTakenOver).toBe(0);
    expect(confused.warnings().map((line) => line.msg)).toEqual([
      "Redis sent a reply no command of a worker's connection was waiting for; relaying it without matching",
    ]);
    worker.close();
    await confused.relay.close();
    server.close();
  });

  it('closes the worker connection when the server sends bytes that are not RESP, with a warning', async () => {
    const server = await fakeRedis((socket) => socket.write('HTTP/1.1 400 Bad Request\r\n\r\n'));
    const confused = await startTestRelay(server.port);
    const worker = await RawClient.connect(confused.port);
    worker.write(resp('PING'));
    await worker.closed;
    expect(worker.peek().length).toBe(0);
    expect(confused.warnings()).toMatchObject([
      {
        msg: "Redis sent bytes that are not Redis protocol on a worker's connection; closed it",
        reason: "Protocol error: unknown reply type 'H'",
      },
    ]);
    await confused.relay.close();
    server.close();
  });
});

describe('no takeover where replies are not one to one', () => {
  it('forwards a BRPOP inside MULTI', async () => {
    onBrpop = fetch;
    const worker = await RawClient.connect(relay.port);
    const replies = await worker.exchange(Buffer.concat([resp('MULTI'), resp('BRPOP', 'q', '1'), resp('EXEC')]));
    expect(replies.toString()).toBe('+OK\r\n+QUEUED\r\n*1\r\n*-1\r\n');
    expect(takeoversOffered).toBe(0);
    worker.close();
  });

  it('stops matching after CLIENT REPLY SKIP, which silences the next reply', async () => {
    onBrpop = fetch;
    const worker = await RawClient.connect(relay.port);
    worker.write(Buffer.concat([resp('CLIENT', 'REPLY', 'SKIP'), resp('BRPOP', 'q', '0.1'), resp('PING')]));
    await worker.expect('+PONG\r\n');
    expect(takeoversOffered).toBe(0);
    worker.close();
  });

  it('stops matching after SUBSCRIBE in RESP3, where other commands may still be sent', async () => {
    onBrpop = fetch;
    const worker = await RawClient.connect(relay.port);
    await worker.exchange(resp('HELLO', '3'));
    worker.write(Buffer.concat([resp('SUBSCRIBE', 'ch'), resp('BRPOP', 'q', '0.1')]));
    await worker.expect('>3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n_\r\n');
    expect(takeoversOffered).toBe(0);
    worker.close();
  });
});

describe('held commands', () => {
  it('stops reading a worker that pipelines megabytes during a takeover, then runs them all in order', async () => {
    const release = deferred<void>();
    onBrpop = async (session) => {
      await release.promise;
      await session.reply(encodeNullArray);
    };
    const worker = await RawClient.connect(relay.port);
    const increments = 1_500_000;
    const incr = resp('INCR', 'held');
    worker.write(
      Buffer.concat([resp('BRPOP', 'q', '2'), Buffer.concat(Array.from({ length: increments }, () => incr))]),
    );
    await sleep(500);
    // ~37 MB sent, more than loopback socket buffers take; the relay holds at most 1 MiB and stops reading: the
    // rest waits in the kernel and the client.
    expect(worker.socket.writableLength).toBeGreaterThan(0);
    expect(await redis().call('GET', 'held')).toBeNull();
    release.resolve();
    const expectedBytes =
      '*-1\r\n'.length + Array.from({ length: increments }, (_, i) => `:${i + 1}\r\n`.length).reduce((a, b) => a + b);
    await eventually(() => (worker.receivedBytes >= expectedBytes ? true : undefined), 'every reply', 60_000);
    const replies = worker.take().toString();
    expect(replies.startsWith('*-1\r\n:1\r\n:2\r\n')).toBe(true);
    expect(replies.endsWith(`:${increments}\r\n`)).toBe(true);
    worker.close();
  });
});

describe('observer', () => {
  it('sees every command with its connection, protocol and transaction state; arguments when captured', async () => {
    const worker = await RawClient.connect(relay.port);
    const before = Date.now();
    await worker.exchange(resp('HELLO', '3'));
    await worker.exchange(
      Buffer.concat([
        resp('MULTI'),
        resp('HSET', 'host:1:work', 'tid-1', '{"queue":"default"}'),
        resp('HSET', 'app:cache', 'k', 'v'),
        resp('EXPIRE', 'host:1:work', '60'),
        resp('EXEC'),
      ]),
    );
    const seen = observed.map(({ name, argCount, args, protocol, inTransaction }) => ({
      name,
      argCount,
      args: args?.map(String),
      protocol,
      inTransaction,
    }));
    expect(seen).toEqual([
      { name: 'HELLO', argCount: 1, args: ['3'], protocol: 2, inTransaction: false },
      { name: 'ECHO', argCount: 1, args: undefined, protocol: 2, inTransaction: false },
      { name: 'MULTI', argCount: 0, args: undefined, protocol: 3, inTransaction: false },
      {
        name: 'HSET',
        argCount: 3,
        args: ['host:1:work', 'tid-1', '{"queue":"default"}'],
        protocol: 3,
        inTransaction: true,
      },
      { name: 'HSET', argCount: 3, args: undefined, protocol: 3, inTransaction: true },
      { name: 'EXPIRE', argCount: 2, args: undefined, protocol: 3, inTransaction: true },
      { name: 'EXEC', argCount: 0, args: undefined, protocol: 3, inTransaction: true },
      { name: 'ECHO', argCount: 1, args: undefined, protocol: 3, inTransaction: false },
    ]);
    const connection = observed[0]?.connection;
    expect(connection).toMatchObject({
      workerAddress: '127.0.0.1',
      workerPort: worker.socket.localPort,
      relayPort: relay.port,
    });
    expect(connection?.openedAt).toBeGreaterThanOrEqual(before - 1000);
    expect(new Set(observed.map((command) => command.connection))).toHaveLength(1);
    worker.close();
  });

  it('carries on when a hook throws, with one warning', async () => {
    const throwing = await startTestRelay(redis().port, {
      hooks: {
        capture: () => {
          throw new Error('capture broke');
        },
        observe: () => {
          throw new Error('observer broke');
        },
      },
    });
    const worker = await RawClient.connect(throwing.port);
    expect((await worker.exchange(Buffer.concat([resp('SET', 'a', '1'), resp('GET', 'a')]))).toString()).toBe(
      '+OK\r\n$1\r\n1\r\n',
    );
    expect(throwing.warnings().map((line) => line.hook)).toEqual(['capture', 'observe']);
    worker.close();
    await throwing.relay.close();
  });
});

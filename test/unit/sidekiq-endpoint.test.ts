// The endpoint's fetch on a fake clock, the Redis calls answered by the test: a fetch that can be recorded
// starts as a swap (its job answered without a promise), anything else goes on as a takeover; a fetch that
// never reached the worker is put back, looked for again a second later when its script may still run.
import { describe, expect, it } from 'vitest';
import type { KeyChanges } from '../../src/redis/key-changes.js';
import type { LuaScript } from '../../src/redis/lua-script.js';
import {
  ConnectionClosedError,
  type CommandSwap,
  type RelayedCommand,
  type ReplyOutcome,
  type TakeoverSession,
} from '../../src/redis/relay-hooks.js';
import type { RespProtocol } from '../../src/redis/resp-encode.js';
import type { BeatWrite } from '../../src/sidekiq/beat-writes.js';
import { sidekiqEndpointHooks, type EndpointParts, type FetchRecord } from '../../src/sidekiq/endpoint.js';
import { FETCH_SCRIPT, UNFETCH_SCRIPT, fetchCall, type FetchTarget } from '../../src/sidekiq/fetch.js';
import { sidekiqKeys } from '../../src/sidekiq/keys.js';
import { decodeReply, RespError } from '../../src/redis/resp-values.js';
import { capturedDump, hashAt } from '../fixtures/sidekiq-versions/dumps.js';
import { captureLogger, FakeClock, flushPromises } from '../helpers/fake.js';

const keys = sidekiqKeys(undefined);
const target: FetchTarget = {
  record: 'di:jobs:w1',
  index: 'di:records',
  instance: 'di:instance:w1',
  instanceId: 'w1',
  token: 'tok',
  sidekiq: keys,
};
const record: FetchRecord = {
  recording: true,
  whenRecording: () => Promise.resolve(),
  fetched: () => {},
  beatWrite: () => {},
  connectionClosed: () => {},
};
const changes: KeyChanges = { live: true, wait: () => new Promise(() => {}), close: () => {} };
const connection = { id: 1, workerAddress: '127.0.0.1', workerPort: 50_000, relayPort: 6_380, openedAt: 0 };
const brpop: RelayedCommand = {
  name: 'BRPOP',
  argCount: 2,
  args: [Buffer.from('queue:default'), Buffer.from('2')],
  firstArgument: Buffer.from('queue:default'),
  connection,
  protocol: 2,
  inTransaction: false,
};

/** A session whose fetch script never answers: the worker goes away while it is on its way. */
function abandonedSession(): { session: TakeoverSession; workerGone: () => void } {
  const controller = new AbortController();
  let rejectSend: (error: Error) => void = () => {};
  const session: TakeoverSession = {
    connection,
    command: brpop,
    protocol: 2,
    signal: controller.signal,
    send: () => new Promise((_, reject) => (rejectSend = reject)),
    reply: () => Promise.resolve('not-sent'),
    forward: () => {},
  };
  const workerGone = (): void => {
    const closed = new ConnectionClosedError('worker');
    controller.abort(closed);
    rejectSend(closed);
  };
  return { session, workerGone };
}

/** The endpoint's hooks on a fake clock; each look for a fetch to put back finds the next of `found`. */
function endpoint(options: { found?: (string | null)[]; record?: FetchRecord; changes?: KeyChanges } = {}) {
  const clock = new FakeClock();
  const { log, records } = captureLogger();
  const found = options.found ?? [];
  const looks: number[] = [];
  const parts: EndpointParts = {
    keys,
    target: () => target,
    record: () => options.record ?? record,
    processOf: () => 7,
    hostname: 'host',
    changes: options.changes ?? changes,
    runScript: (script: LuaScript) => {
      expect(script).toBe(UNFETCH_SCRIPT);
      looks.push(clock.now());
      return Promise.resolve(found.shift() ?? null);
    },
    clock,
    log,
  };
  const hooks = sidekiqEndpointHooks(parts);
  const putBack = () => records.filter((line) => String(line.msg).includes('put back'));
  return { clock, hooks, looks, putBack };
}

/** The keys and arguments of the fetch script a swap sends (EVALSHA sha1 numkeys keys... args...). */
function sentFetch(swap: CommandSwap): { keys: string[]; args: string[] } {
  const [name, sha1, count, ...rest] = (decodeReply(swap.send) as Buffer[]).map((item) => item.toString());
  expect([name, sha1]).toEqual(FETCH_SCRIPT.command([], []).slice(0, 2));
  return { keys: rest.slice(0, Number(count)), args: rest.slice(Number(count)) };
}

function swapOf(takeover: unknown): CommandSwap {
  if (typeof takeover !== 'object' || takeover === null) throw new Error('the fetch did not start as a swap');
  return takeover as CommandSwap;
}

/** A session of a fetch gone on as a takeover: what it sent and replied. */
function recordingSession(): { session: TakeoverSession; sent: unknown[]; replies: Buffer[] } {
  const sent: unknown[] = [];
  const replies: Buffer[] = [];
  const session: TakeoverSession = {
    connection,
    command: brpop,
    protocol: 2,
    signal: new AbortController().signal,
    send: (command) => {
      sent.push(command);
      return new Promise(() => {});
    },
    reply: (reply: Buffer | ((protocol: RespProtocol) => Buffer)): Promise<ReplyOutcome> => {
      replies.push(typeof reply === 'function' ? reply(2) : reply);
      return Promise.resolve('flushed');
    },
    forward: () => {},
  };
  return { session, sent, replies };
}

const job = [Buffer.from('queue:default'), Buffer.from('{"jid":"jid-1"}'), Buffer.from('jid-1')];

describe('a fetch that can be recorded starts as a swap', () => {
  it("sends fetch.lua in the BRPOP's place; a job taken is the reply, recorded once flushed", () => {
    const fetched: [string, string][] = [];
    const { hooks } = endpoint({ record: { ...record, fetched: (jid, process) => void fetched.push([jid, process]) } });
    const swap = swapOf(hooks.takeover?.(brpop));
    const [fetchId] = sentFetch(swap).args.slice(-1);
    expect(sentFetch(swap)).toEqual(
      fetchCall({ queueKeys: ['queue:default'], timeoutMs: 2000 }, target, 'host:7', fetchId ?? ''),
    );
    expect(swap.answer(job)).toEqual(Buffer.from('*2\r\n$13\r\nqueue:default\r\n$15\r\n{"jid":"jid-1"}\r\n'));
    expect(fetched).toEqual([]);
    swap.settled('flushed');
    expect(fetched).toEqual([['jid-1', 'host:7']]);
    expect(hooks.fetches()).toBe(1);
  });

  it('encodes each fetch of a connection with its own fetch id, and the queues of its own BRPOP', () => {
    const { hooks } = endpoint();
    const first = sentFetch(swapOf(hooks.takeover?.(brpop)));
    const second = sentFetch(swapOf(hooks.takeover?.(brpop)));
    expect(second.keys).toEqual(first.keys);
    expect(second.args.slice(0, -1)).toEqual(first.args.slice(0, -1));
    expect(second.args.at(-1)).not.toBe(first.args.at(-1));
    const queues = [Buffer.from('queue:critical'), Buffer.from('queue:default'), Buffer.from('2')];
    const other = sentFetch(swapOf(hooks.takeover?.({ ...brpop, argCount: 3, args: queues })));
    expect(other.keys).toEqual(['queue:critical', 'queue:default', target.record, target.index, target.instance]);
  });

  it('puts a job whose reply never left back in its queue, with one look', async () => {
    const { clock, hooks, looks, putBack } = endpoint({ found: ['jid-1'] });
    const swap = swapOf(hooks.takeover?.(brpop));
    swap.answer(job);
    swap.settled('not-sent');
    await clock.advanceAsync(0);
    expect(looks).toEqual([1_000]);
    expect(putBack()).toMatchObject([{ jid: 'jid-1' }]);
    expect(hooks.fetches()).toBe(0);
  });

  it("goes on as a takeover when the queues are empty: it waits from the swap's reply, without running the script again, and answers nil at the timeout", async () => {
    const waits: number[] = [];
    const { clock, hooks } = endpoint({
      changes: { live: true, wait: (_keys, ms) => (waits.push(ms), Promise.resolve('timeout')), close: () => {} },
    });
    const swap = swapOf(hooks.takeover?.(brpop));
    await clock.advanceAsync(500);
    const goOn = swap.answer(null);
    if (typeof goOn !== 'function') throw new Error('an empty queue was answered at once');
    const { session, sent, replies } = recordingSession();
    await goOn(session);
    expect(sent).toEqual([]);
    expect(waits).toEqual([1_500]);
    expect(replies.map(String)).toEqual(['*-1\r\n']);
  });

  it('runs the whole script when Redis does not hold it (NOSCRIPT)', async () => {
    const { hooks } = endpoint();
    const swap = swapOf(hooks.takeover?.(brpop));
    const goOn = swap.answer(new RespError('NOSCRIPT No matching script.'));
    if (typeof goOn !== 'function') throw new Error('NOSCRIPT was answered at once');
    const { session, sent } = recordingSession();
    void goOn(session);
    await flushPromises();
    const [, source] = FETCH_SCRIPT.command([], [], true);
    expect(sent.map((command) => (command as string[]).slice(0, 2))).toEqual([['EVAL', source]]);
  });
});

describe('the put-back of a fetch whose worker went away while its script was on its way', () => {
  /** Each look's time, and the line of the job put back, after the worker went away; */
  async function expectTwoLooks(clock: FakeClock, looks: number[], putBack: () => unknown[]): Promise<void> {
    await clock.advanceAsync(0);
    expect(looks).toEqual([1_000]);
    await clock.advanceAsync(999);
    expect(looks).toHaveLength(1);
    await clock.advanceAsync(1);
    expect(looks).toEqual([1_000, 2_000]);
    expect(putBack()).toMatchObject([{ jid: 'jid-1' }]);
    await clock.advanceAsync(10_000);
    expect(looks).toHaveLength(2);
  }

  it('looks for the job again a second later when the first look found nothing, and puts it back then (a swap)', async () => {
    const { clock, hooks, looks, putBack } = endpoint({ found: [null, 'jid-1'] });
    const swap = swapOf(hooks.takeover?.(brpop));
    swap.answer(new ConnectionClosedError('worker'));
    await expectTwoLooks(clock, looks, putBack);
  });

  it('does the same for a fetch gone on as a takeover (the record was not ready at the BRPOP)', async () => {
    const later = { ...record, recording: false };
    const { clock, hooks, looks, putBack } = endpoint({
      found: [null, 'jid-1'],
      record: Object.assign(later, { whenRecording: () => ((later.recording = true), Promise.resolve()) }),
    });
    const { session, workerGone } = abandonedSession();
    const handler = hooks.takeover?.(brpop);
    if (typeof handler !== 'function') throw new Error('a fetch that cannot be recorded yet started as a swap');
    const fetching = handler(session);
    await flushPromises();
    workerGone();
    await fetching;
    await expectTwoLooks(clock, looks, putBack);
  });
});

describe('the heartbeat writes of a connection', () => {
  it('hands the record each beat it reads, the commands around it passing it by', () => {
    const writes: BeatWrite[] = [];
    const { hooks } = endpoint({ record: { ...record, beatWrite: (write) => void writes.push(write) } });
    const identity = 'vm:27869:ab5cf2f4c0e6';
    const work = `${identity}:workers`;
    // The two running jobs of the real Sidekiq 6.4.1 capture, as its heartbeat HSETs them.
    const running = Object.entries(hashAt(capturedDump('run1-01-running'), work)).flat();
    const command = (name: string, ...args: string[]): RelayedCommand => ({
      ...brpop,
      name,
      argCount: args.length,
      args: args.map((arg) => Buffer.from(arg)),
      firstArgument: args[0] === undefined ? undefined : Buffer.from(args[0]),
    });
    const beat = [
      command('MULTI'),
      command('DEL', work),
      command('HSET', work, ...running),
      command('EXPIRE', work, '60'),
    ];
    for (const seen of [command('PING'), ...beat, command('EXEC'), command('PING')]) hooks.observe?.(seen);
    expect(writes.map((write) => [write.kind, write.identity])).toEqual([['work', identity]]);
    expect(writes[0]?.kind === 'work' ? writes[0].jids.size : 0).toBe(2);
  });
});

// The put-back of a fetch that never reached the worker, on a fake clock with the Redis calls answered by
// the test: a fetch aborted while its script was on its way is looked for again a second later, as the
// script may run after the first look.
import { describe, expect, it } from 'vitest';
import type { KeyChanges } from '../../src/redis/key-changes.js';
import type { LuaScript } from '../../src/redis/lua-script.js';
import { ConnectionClosedError, type RelayedCommand, type TakeoverSession } from '../../src/redis/relay-hooks.js';
import { sidekiqEndpointHooks, type FetchRecord } from '../../src/sidekiq/endpoint.js';
import { UNFETCH_SCRIPT, type FetchTarget } from '../../src/sidekiq/fetch.js';
import { sidekiqKeys } from '../../src/sidekiq/keys.js';
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

describe('the put-back of a fetch whose worker went away while its script was on its way', () => {
  it('looks for the job again a second later when the first look found nothing, and puts it back then', async () => {
    const clock = new FakeClock();
    const { log, records } = captureLogger();
    /** What each look finds: nothing at first (the script not run yet), then the job. */
    const found: (string | null)[] = [null, 'jid-1'];
    const looks: number[] = [];
    const hooks = sidekiqEndpointHooks({
      keys,
      target: () => target,
      record: () => record,
      processOf: () => 7,
      hostname: 'host',
      changes,
      runScript: (script: LuaScript) => {
        expect(script).toBe(UNFETCH_SCRIPT);
        looks.push(clock.now());
        return Promise.resolve(found.shift() ?? null);
      },
      clock,
      log,
    });
    const { session, workerGone } = abandonedSession();
    const handler = hooks.takeover?.(brpop);
    expect(handler).toBeDefined();
    const fetching = handler?.(session);
    await flushPromises();
    workerGone();
    await fetching;
    await clock.advanceAsync(0);
    expect(looks).toEqual([1_000]);
    await clock.advanceAsync(999);
    expect(looks).toHaveLength(1);
    await clock.advanceAsync(1);
    expect(looks).toEqual([1_000, 2_000]);
    expect(records.filter((line) => String(line.msg).includes('put back'))).toMatchObject([{ jid: 'jid-1' }]);
    await clock.advanceAsync(10_000);
    expect(looks).toHaveLength(2);
  });
});

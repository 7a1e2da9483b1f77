// The reliable fetch's pure parts: the script's keys and arguments for a batch of fetches, its reply read
// back per fetch, and the batching of fetches that arrive while a run is on its way.
import { describe, expect, it } from 'vitest';
import { FetchBatches, MAX_BATCH } from '../../src/sidekiq/fetch-batches.js';
import { fetchCall, parseFetchReply, type FetchRequest, type FetchTarget } from '../../src/sidekiq/fetch.js';
import { sidekiqKeys } from '../../src/sidekiq/keys.js';

const target: FetchTarget = {
  record: 'di:jobs:w1',
  index: 'di:records',
  instance: 'di:instance:w1',
  instanceId: 'w1',
  token: 'tok',
  sidekiq: sidekiqKeys('ns'),
};
const request = (fetchId: string, ...queues: string[]): FetchRequest => ({
  fetch: { queueKeys: queues.map((queue) => `ns:queue:${queue}`), timeoutMs: 2_000 },
  process: 'host:7',
  fetchId,
});
const job = (jid: string): Buffer[] => [Buffer.from('ns:queue:a'), Buffer.from(`{"jid":"${jid}"}`), Buffer.from(jid)];

describe('the fetch script call', () => {
  it("lists the record keys, then each fetch's queues in turn; three arguments per fetch say whose they are", () => {
    expect(fetchCall(target, [request('f1', 'a', 'b'), request('f2', 'c')])).toEqual({
      keys: ['di:jobs:w1', 'di:records', 'di:instance:w1', 'ns:queue:a', 'ns:queue:b', 'ns:queue:c'],
      args: ['ns:queue:', 'w1', 'tok', 'host:7', 'f1', '2', 'host:7', 'f2', '1'],
    });
  });
});

describe("the fetch script's reply", () => {
  it('gives each fetch its job, or empty where the script answered nil', () => {
    expect(parseFetchReply([job('j1'), null], 2)).toEqual([
      { kind: 'job', queueKey: Buffer.from('ns:queue:a'), job: Buffer.from('{"jid":"j1"}'), jid: 'j1' },
      { kind: 'empty' },
    ]);
  });

  it('gives every fetch of the run the refusal: a key of another type, another owner', () => {
    const broken = ['broken', 'di:jobs:w1', 'list'].map((text) => Buffer.from(text));
    expect(parseFetchReply(broken, 2)).toEqual([
      { kind: 'broken', key: 'di:jobs:w1', type: 'list' },
      { kind: 'broken', key: 'di:jobs:w1', type: 'list' },
    ]);
    const owned = ['not-owner', 'di:instance:w1', 'other'].map((text) => Buffer.from(text));
    expect(parseFetchReply(owned, 1)).toEqual([{ kind: 'not-owner', key: 'di:instance:w1', owner: 'other' }]);
  });

  it('is refused when it does not answer each fetch: a job is never handed to the wrong one', () => {
    expect(() => parseFetchReply([job('j1')], 2)).toThrow('answered 1 fetches of 2');
    expect(() => parseFetchReply([job('j1'), job('j2'), job('j3')], 3)).not.toThrow();
    expect(() => parseFetchReply('OK', 1)).toThrow('unknown shape');
    expect(() => parseFetchReply([[Buffer.from('x')]], 1)).toThrow('unknown shape');
  });
});

/** A run that waits until the test ends it; each run's fetch ids. */
function heldRuns(): {
  runs: string[][];
  batches: FetchBatches;
  answer: (index: number, reply: unknown) => void;
  fail: (index: number, error: Error) => void;
} {
  const runs: string[][] = [];
  const settle: { resolve: (reply: unknown) => void; reject: (error: Error) => void }[] = [];
  const batches = new FetchBatches((_keys, args) => {
    runs.push(args.slice(3).filter((_, index) => index % 3 === 1));
    return new Promise((resolve, reject) => settle.push({ resolve, reject }));
  });
  return {
    runs,
    batches,
    answer: (index, reply) => settle[index]?.resolve(reply),
    fail: (index, error) => settle[index]?.reject(error),
  };
}

const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('fetches in batches', () => {
  it('runs a fetch at once when no run is on its way, and those that came meanwhile together in the next', async () => {
    const { runs, batches, answer } = heldRuns();
    const first = batches.fetch(target, request('f1', 'a'));
    expect(runs).toEqual([['f1']]);
    const later = [batches.fetch(target, request('f2', 'a')), batches.fetch(target, request('f3', 'a'))];
    await flush();
    expect(runs).toEqual([['f1']]);
    answer(0, [job('j1')]);
    await expect(first).resolves.toMatchObject({ kind: 'job', jid: 'j1' });
    await flush();
    expect(runs).toEqual([['f1'], ['f2', 'f3']]);
    answer(1, [null, job('j3')]);
    await expect(Promise.all(later)).resolves.toMatchObject([{ kind: 'empty' }, { kind: 'job', jid: 'j3' }]);
  });

  it('fails every fetch of a run that failed, and goes on with the next', async () => {
    const { runs, batches, answer, fail } = heldRuns();
    const first = batches.fetch(target, request('f1', 'a'));
    const second = batches.fetch(target, request('f2', 'a'));
    const third = batches.fetch(target, request('f3', 'a'));
    fail(0, new Error('connection lost'));
    await expect(first).rejects.toThrow('connection lost');
    await flush();
    answer(1, [job('j2')]);
    await expect(Promise.all([second, third])).rejects.toThrow('answered 1 fetches of 2');
    await flush();
    const fourth = batches.fetch(target, request('f4', 'a'));
    answer(2, [job('j4')]);
    await expect(fourth).resolves.toMatchObject({ jid: 'j4' });
    expect(runs).toEqual([['f1'], ['f2', 'f3'], ['f4']]);
  });

  it(`puts at most ${MAX_BATCH} fetches in a run, and never the fetches of two records`, async () => {
    const { runs, batches, answer } = heldRuns();
    const other: FetchTarget = { ...target, record: 'di:jobs:w2' };
    void batches.fetch(target, request('f0', 'a'));
    for (let index = 1; index <= MAX_BATCH + 1; index++) void batches.fetch(target, request(`f${index}`, 'a'));
    void batches.fetch(other, request('g1', 'a'));
    answer(0, [null]);
    await flush();
    expect(runs[1]).toHaveLength(MAX_BATCH);
    answer(
      1,
      Array.from({ length: MAX_BATCH }, () => null),
    );
    await flush();
    expect(runs[2]).toEqual([`f${MAX_BATCH + 1}`]);
    answer(2, [null]);
    await flush();
    expect(runs[3]).toEqual(['g1']);
  });
});

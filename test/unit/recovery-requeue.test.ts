import { describe, expect, it } from 'vitest';
import { countOutcomes, parseRequeueReply, runningJobs } from '../../src/recovery/requeue.js';
import type { InFlightJob, SidekiqProcess } from '../../src/sidekiq/parse.js';

describe('parseRequeueReply', () => {
  it('reads each job as jid, outcome, detail and deaths', () => {
    const reply = [
      'recovered',
      'a',
      'requeued',
      'default',
      '1',
      'b',
      'malformed',
      'not a JSON object',
      '',
      'c',
      'poison',
      'x',
      '3',
    ];
    expect(parseRequeueReply(reply)).toEqual({
      kind: 'recovered',
      jobs: [
        { jid: 'a', outcome: 'requeued', detail: 'default', deaths: 1 },
        { jid: 'b', outcome: 'malformed', detail: 'not a JSON object', deaths: undefined },
        { jid: 'c', outcome: 'poison', detail: 'x', deaths: 3 },
      ],
    });
    expect(parseRequeueReply(['recovered'])).toEqual({ kind: 'recovered', jobs: [] });
  });

  it('reads a lock that is not held and a peer that is alive', () => {
    expect(parseRequeueReply(['not-held'])).toEqual({ kind: 'not-held' });
    expect(parseRequeueReply(['alive'])).toEqual({ kind: 'alive' });
  });

  it('rejects anything else', () => {
    expect(() => parseRequeueReply(['recovered', 'a', 'lost', 'default', ''])).toThrow(
      'unexpected requeue outcome "lost"',
    );
    expect(() => parseRequeueReply(['recovered', 'a', 'requeued', 'default'])).toThrow(/unexpected requeue reply/);
    expect(() => parseRequeueReply([1])).toThrow(/unexpected requeue reply/);
    expect(() => parseRequeueReply('OK')).toThrow(/unexpected requeue reply/);
  });
});

describe('countOutcomes', () => {
  it('counts every outcome, zero included', () => {
    const jobs = [
      { jid: 'a', outcome: 'requeued', detail: 'q', deaths: 1 },
      { jid: 'b', outcome: 'requeued', detail: 'q', deaths: 1 },
      { jid: 'c', outcome: 'queued', detail: 'q', deaths: undefined },
    ] as const;
    expect(countOutcomes(jobs)).toEqual({
      requeued: 2,
      running: 0,
      queued: 1,
      malformed: 0,
      failed: 0,
      held: 0,
      poison: 0,
    });
  });
});

describe('runningJobs', () => {
  const process = (identity: string, beatEpochS: number, version?: string): SidekiqProcess => ({
    identity,
    hostname: 'h',
    pid: 1,
    tag: '',
    concurrency: 5,
    queues: ['default'],
    busy: 1,
    quiet: false,
    beatEpochS,
    ...(version === undefined ? {} : { version }),
  });
  const job = (jid: string, identity: string): InFlightJob => ({
    identity,
    threadId: 't',
    queue: 'default',
    payload: '{}',
    jid,
    class: 'C',
    runAtEpochS: 0,
  });

  it('lists the jobs of processes with a fresh heartbeat only, not those of a killed process whose work hash lingers', () => {
    const snapshot = {
      processes: [process('h:1:live', 995), process('h:2:ghost', 900), process('h:3:seven', 975, '7.3.9')],
      jobs: [job('a', 'h:1:live'), job('b', 'h:2:ghost'), job('c', 'h:3:seven'), job('d', 'h:4:expired')],
      warnings: [],
    };
    expect(runningJobs(snapshot, 1_000)).toEqual([
      { jid: 'a', identity: 'h:1:live' },
      { jid: 'c', identity: 'h:3:seven' },
    ]);
  });

  it("counts a fresh identity of this host as running only when drain-init sees it alive: a killed worker's ghost runs nothing", () => {
    const snapshot = {
      processes: [
        process('h:9:before-restart', 995),
        process('h:9:now', 998),
        { ...process('other:9:peer', 998), hostname: 'other' },
      ],
      jobs: [job('a', 'h:9:before-restart'), job('b', 'h:9:now'), job('c', 'other:9:peer')],
      warnings: [],
    };
    expect(runningJobs(snapshot, 1_000, { hostname: 'h', liveIdentities: new Set(['h:9:now']) })).toEqual([
      { jid: 'b', identity: 'h:9:now' },
      { jid: 'c', identity: 'other:9:peer' },
    ]);
  });
});

import { describe, expect, it } from 'vitest';
import {
  parseProcess,
  parseSnapshot,
  parseWork,
  toEpochSeconds,
  type InFlightJob,
  type SidekiqSnapshot,
} from '../../src/sidekiq/parse.js';
import { hashAt, identityHashes, capturedDump, versionDump, type Dump } from '../fixtures/sidekiq-versions/dumps.js';

function snapshotOf(dump: Dump): SidekiqSnapshot {
  return parseSnapshot(identityHashes(dump));
}

function jobsOf(snapshot: SidekiqSnapshot, identity: string): InFlightJob[] {
  return snapshot.jobs.filter((job) => job.identity === identity).sort((a, b) => a.runAtEpochS - b.runAtEpochS);
}

/** The payload string inside a work value, as Sidekiq 6.0.2+ wrote it. */
function rawPayload(dump: Dump, workKey: string, threadId: string): unknown {
  return (JSON.parse(hashAt(dump, workKey)[threadId] ?? '') as { payload: unknown }).payload;
}

describe('Sidekiq 5.2: :workers hash, payload as an object', () => {
  const dump = versionDump('sidekiq-5.2.10');
  const snapshot = snapshotOf(dump);
  const ours = 'worker-7f9c:7:7c11c05dff7b';

  it('parses every process with a hash, without warnings, and no version', () => {
    expect(snapshot.warnings).toEqual([]);
    expect(snapshot.processes.map((p) => p.identity)).toEqual([
      'worker-7f9c:7:7c11c05dff7b',
      'worker-7f9c:7:7f6c813ebe55',
      'worker-a1b2:7:9c8f9a4cbd78',
    ]);
    expect(snapshot.processes[0]).toEqual({
      identity: ours,
      hostname: 'worker-7f9c',
      pid: 7,
      tag: 'app',
      concurrency: 10,
      queues: ['critical', 'default'],
      busy: 2,
      quiet: false,
      beatEpochS: 1795400098.1242,
    });
  });

  it('re-serializes the object payload', () => {
    const [report, mailer] = jobsOf(snapshot, ours);
    expect(report).toEqual({
      identity: ours,
      threadId: 'uk4',
      queue: 'default',
      jid: '4ebbd0c6d548d393c5f96e75',
      class: 'ReportJob',
      runAtEpochS: 1795400055,
      enqueuedAtEpochS: 1795400054.5931,
      payload:
        '{"class":"ReportJob","args":[42,"monthly"],"retry":true,"queue":"default","jid":"4ebbd0c6d548d393c5f96e75","created_at":1795400054.5897002,"enqueued_at":1795400054.5931}',
    });
    expect(mailer).toMatchObject({
      threadId: 'rh1u',
      queue: 'critical',
      class: 'MailerJob',
      jid: 'c454fa23d827923c76e6b5d1',
      runAtEpochS: 1795400096,
    });
  });

  it("keeps the job's content but not Ruby's bytes: 600.0 becomes 600", () => {
    const [lost] = jobsOf(snapshot, 'worker-7f9c:7:7f6c813ebe55');
    expect(JSON.parse(lost?.payload ?? '')).toEqual(rawPayload(dump, 'worker-7f9c:7:7f6c813ebe55:workers', 'd6i'));
    expect(lost?.payload).toContain('"args":[600,"lost"]');
  });
});

describe('Sidekiq 6.5, 7.3 and 8.x: :work hash, payload as the job string', () => {
  it.each([
    [
      'sidekiq-6.5.12',
      'worker-7f9c:7:e803e103337b',
      'map',
      { concurrency: 10, beatEpochS: 1795400198.2151 },
      1795400154.684,
      1795400155,
    ],
    [
      'sidekiq-7.3.9',
      'worker-7f9c:7:9481201bba31',
      '1lf',
      { concurrency: 5, version: '7.3.9' },
      1795400254.7951,
      1795400255,
    ],
    [
      'sidekiq-8.0.7',
      'worker-7f9c:7:f9732773c14b',
      'oe13',
      { concurrency: 5, version: '8.0.7' },
      1795400354.906,
      1795400356,
    ],
    [
      'sidekiq-8.1.7',
      'worker-7f9c:7:7152272ec924',
      '5iv',
      { concurrency: 5, version: '8.1.7' },
      1795400455.017,
      1795400456,
    ],
  ])(
    '%s: the payload is byte-identical, enqueued_at in seconds',
    (name, ours, threadId, processFields, enqueuedAtEpochS, runAtEpochS) => {
      const dump = versionDump(name);
      const snapshot = snapshotOf(dump);
      expect(snapshot.warnings).toEqual([]);
      expect(snapshot.processes.find((p) => p.identity === ours)).toMatchObject({
        hostname: 'worker-7f9c',
        pid: 7,
        tag: 'app',
        busy: 2,
        quiet: false,
        queues: ['critical', 'default'],
        ...processFields,
      });
      const job = snapshot.jobs.find((j) => j.threadId === threadId);
      expect(job).toMatchObject({ identity: ours, queue: 'default', class: 'ReportJob' });
      expect(job?.payload).toBe(rawPayload(dump, `${ours}:work`, threadId));
      expect(job?.payload).toMatch(
        /^\{"retry":true,"queue":"default","args":\[42,"monthly"\],"class":"ReportJob","jid":"[0-9a-f]{24}",/,
      );
      expect(job?.enqueuedAtEpochS).toBeCloseTo(enqueuedAtEpochS, 6);
      expect(job?.runAtEpochS).toBe(runAtEpochS);
    },
  );

  it('6.5 writes no version, 8.1 takes concurrency from the hash field, not info', () => {
    expect(snapshotOf(versionDump('sidekiq-6.5.12')).processes.every((p) => p.version === undefined)).toBe(true);
    const dump = versionDump('sidekiq-8.1.7');
    const identity = 'worker-7f9c:12:aa8053e9e2e6';
    expect(JSON.parse(hashAt(dump, identity).info ?? '')).not.toHaveProperty('concurrency');
    expect(parseProcess(identity, { ...hashAt(dump, identity), concurrency: '9' }).value).toMatchObject({
      concurrency: 9,
      busy: 0,
      quiet: true,
    });
  });

  it('8.1 lists every process of the dump, an idle one with no work hash', () => {
    const snapshot = snapshotOf(versionDump('sidekiq-8.1.7'));
    expect(snapshot.processes.map((p) => `${p.identity} busy=${p.busy}`)).toEqual([
      'worker-7f9c:12:aa8053e9e2e6 busy=0',
      'worker-7f9c:40:b0860e9dcde5 busy=1',
      'worker-7f9c:7:30a7b511159a busy=1',
      'worker-7f9c:7:7152272ec924 busy=2',
      'worker-a1b2:7:358a2f15c7c8 busy=1',
    ]);
    expect(snapshot.jobs.map((j) => j.identity).filter((id) => id.startsWith('worker-7f9c:12:'))).toEqual([]);
  });

  it('takes queues from capsules once info drops them (announced for 9.0)', () => {
    const dump = versionDump('sidekiq-8.1.7');
    const identity = 'worker-7f9c:7:7152272ec924';
    const { queues: _dropped, ...info } = JSON.parse(hashAt(dump, identity).info ?? '') as Record<string, unknown>;
    const parsed = parseProcess(identity, { ...hashAt(dump, identity), info: JSON.stringify(info) });
    expect(parsed).toEqual({ value: expect.objectContaining({ queues: ['critical', 'default'] }), warnings: [] });
  });
});

describe('real Sidekiq 6.4.1 captures', () => {
  it('running: the :workers payloads are the exact strings Sidekiq pushed back on TERM', () => {
    const running = snapshotOf(capturedDump('run1-01-running'));
    expect(running.warnings).toEqual([]);
    expect(running.processes).toEqual([
      {
        identity: 'vm:27869:ab5cf2f4c0e6',
        hostname: 'vm',
        pid: 27869,
        tag: '',
        concurrency: 2,
        queues: ['critical', 'default'],
        busy: 2,
        quiet: false,
        beatEpochS: 1795325433.8508933,
      },
    ]);
    expect(running.jobs.map((j) => [j.threadId, j.jid, j.runAtEpochS, j.enqueuedAtEpochS])).toEqual([
      ['ku5', '2892726d05097a1cc3920c95', 1795325429, 1795325428.4485722],
      ['ktl', '077b3846e8d89496ae144809', 1795325429, 1795325428.4487343],
    ]);
    const afterTerm = capturedDump('run1-03-after-term-exit').keys['queue:default'];
    expect(afterTerm?.type === 'list' ? afterTerm.value.slice(2) : []).toEqual(running.jobs.map((j) => j.payload));
  });

  it('after TSTP: quiet, still busy', () => {
    expect(snapshotOf(capturedDump('run1-02-after-tstp')).processes).toEqual([
      expect.objectContaining({ quiet: true, busy: 2 }),
    ]);
  });

  it('after SIGKILL: the ghost keeps its jobs; once its hash expires, the member alone is skipped silently', () => {
    const justKilled = snapshotOf(capturedDump('run2-02-just-after-sigkill'));
    expect(justKilled.processes.map((p) => p.identity)).toEqual(['vm:30550:3ada88292ce4']);
    expect(
      justKilled.jobs
        .map((j) => JSON.parse(j.payload) as { args: unknown[] })
        .map((job) => job.args[1])
        .sort(),
    ).toEqual(['victim-A', 'victim-B']);
    const expired = snapshotOf(capturedDump('run2-04-after-ghost-ttl-expiry'));
    expect(identityHashes(capturedDump('run2-04-after-ghost-ttl-expiry')).map((e) => e.identity)).toEqual([
      'vm:30550:3ada88292ce4',
      'vm:30630:9ef0d99c2bdc',
    ]);
    expect(expired).toEqual({
      processes: [expect.objectContaining({ identity: 'vm:30630:9ef0d99c2bdc' })],
      jobs: [],
      warnings: [],
    });
  });
});

describe('job times', () => {
  it('reads epoch ms (8.0+) and epoch seconds (before), integer-valued or not', () => {
    expect(toEpochSeconds(1795400354906)).toBe(1795400354.906);
    expect(toEpochSeconds(1795400354.906)).toBe(1795400354.906);
    expect(toEpochSeconds(1795400354)).toBe(1795400354);
  });
});

describe('broken values are skipped with one warning line each', () => {
  const id = 'host:7:0123456789ab';
  const info = {
    hostname: 'host',
    started_at: 1795400000.5,
    pid: 7,
    tag: '',
    concurrency: 5,
    queues: ['default'],
    labels: [],
    identity: id,
  };
  const good = { info: JSON.stringify(info), busy: '1', beat: '1795400100.25', quiet: 'false' };
  const processWarning = (fields: Record<string, string>): readonly string[] => {
    const parsed = parseProcess(id, fields);
    expect(parsed.value).toBeUndefined();
    return parsed.warnings;
  };

  it('accepts the well-formed hash', () => {
    expect(parseProcess(id, good)).toEqual({
      value: {
        identity: id,
        hostname: 'host',
        pid: 7,
        tag: '',
        concurrency: 5,
        queues: ['default'],
        busy: 1,
        quiet: false,
        beatEpochS: 1795400100.25,
      },
      warnings: [],
    });
  });

  it('treats an empty hash as expired, not broken', () => {
    expect(parseProcess(id, {})).toEqual({ value: undefined, warnings: [] });
  });

  it.each([
    ['no info field', { busy: '1', beat: '1', quiet: 'false' }],
    ['info is not JSON', { ...good, info: '{"hostname":' }],
    ['info is not a JSON object', { ...good, info: '[1,2]' }],
    ['pid in info is not a number', { ...good, info: JSON.stringify({ ...info, pid: '7' }) }],
    ['pid in info is not a whole number', { ...good, info: JSON.stringify({ ...info, pid: 7.5 }) }],
    ['info has no hostname', { ...good, info: JSON.stringify({ ...info, hostname: undefined }) }],
    ['queues in info is not a list of strings', { ...good, info: JSON.stringify({ ...info, queues: 'default' }) }],
    ['info has no concurrency', { ...good, info: JSON.stringify({ ...info, concurrency: undefined }) }],
    ['version in info is not a string', { ...good, info: JSON.stringify({ ...info, version: 7 }) }],
    ['beat field is not an epoch time', { ...good, beat: 'soon' }],
    ['beat field is not an epoch time', { ...good, beat: '' }],
    ['busy field is not a whole number', { ...good, busy: '-1' }],
    ['concurrency field is not a whole number', { ...good, concurrency: 'five' }],
    ['quiet field is neither true nor false', { ...good, quiet: 'yes' }],
  ])('process: %s', (reason, fields) => {
    expect(processWarning(fields)).toEqual([`Sidekiq process "${id}" skipped: ${reason}`]);
  });

  const job = {
    retry: true,
    queue: 'default',
    args: [1],
    class: 'ReportJob',
    jid: 'a1b2c3d4e5f6a1b2c3d4e5f6',
    created_at: 1795400000.1,
    enqueued_at: 1795400000.2,
  };
  const value = (work: Record<string, unknown>): string =>
    JSON.stringify({ queue: 'default', payload: JSON.stringify(job), run_at: 1795400001, ...work });

  it.each([
    ['the value is not JSON', 'not json'],
    ['the value has no payload', value({ payload: undefined })],
    ['payload is neither a JSON string nor an object', value({ payload: 42 })],
    ['payload is not JSON', value({ payload: '{"jid":' })],
    ['payload has no jid', value({ payload: JSON.stringify({ ...job, jid: undefined }) })],
    ['class in payload is not a string', value({ payload: { ...job, class: 3 } })],
    [
      'enqueued_at in payload is not a number',
      value({ payload: JSON.stringify({ ...job, enqueued_at: '1795400000' }) }),
    ],
    ['the value has no queue', value({ queue: undefined })],
    ['run_at in the value is not a number', value({ run_at: '1795400001' })],
  ])('job: %s', (reason, text) => {
    const parsed = parseWork(id, { ok: value({}), bad: text });
    expect(parsed.value.map((j) => j.threadId)).toEqual(['ok']);
    expect(parsed.warnings).toEqual([`Sidekiq job of "${id}" on thread "bad" skipped: ${reason}`]);
  });

  it('keeps a job without enqueued_at, leaving the field out', () => {
    const [parsed] = parseWork(id, {
      t1: value({ payload: JSON.stringify({ ...job, enqueued_at: undefined }) }),
    }).value;
    expect(parsed).not.toHaveProperty('enqueuedAtEpochS');
    expect(parsed).toMatchObject({ jid: job.jid, runAtEpochS: 1795400001 });
  });

  it('keeps each warning on one line whatever the identity holds', () => {
    const [warning] = parseProcess('evil\nid', { info: 'x' }).warnings;
    expect(warning).toBe('Sidekiq process "evil\\nid" skipped: info is not JSON');
  });

  it('reports broken entries of a whole snapshot and keeps the rest', () => {
    const snapshot = parseSnapshot([
      { identity: id, process: good, work: { t1: value({}) }, workers: {} },
      { identity: 'host:8:ffffffffffff', process: { ...good, beat: 'x' }, work: {}, workers: { t2: 'x' } },
    ]);
    expect(snapshot.processes.map((p) => p.identity)).toEqual([id]);
    expect(snapshot.jobs.map((j) => j.threadId)).toEqual(['t1']);
    expect(snapshot.warnings).toEqual([
      'Sidekiq process "host:8:ffffffffffff" skipped: beat field is not an epoch time',
      'Sidekiq job of "host:8:ffffffffffff" on thread "t2" skipped: the value is not JSON',
    ]);
  });
});

import { describe, expect, it } from 'vitest';
import { mirrorChange, mirroredValue, wholeMirror, type Mirror } from '../../src/recovery/mirror-diff.js';
import type { InFlightJob } from '../../src/sidekiq/parse.js';

function job(jid: string, identity = 'host:1:aaa', queue = 'default'): InFlightJob {
  return {
    identity,
    threadId: `t-${jid}`,
    queue,
    payload: `{"jid":"${jid}","queue":"${queue}"}`,
    jid,
    class: 'SleepJob',
    runAtEpochS: 1,
  };
}

function mirrorOf(...jobs: InFlightJob[]): Mirror {
  return new Map(jobs.map((each) => [each.jid, { identity: each.identity, value: mirroredValue(each) }]));
}

describe('mirroredValue', () => {
  it('keeps the identity, the queue and the payload string as Sidekiq would push it', () => {
    const value = JSON.parse(mirroredValue(job('a'))) as unknown;
    expect(value).toEqual({ identity: 'host:1:aaa', queue: 'default', payload: '{"jid":"a","queue":"default"}' });
  });
});

describe('mirrorChange', () => {
  it('sets the new jobs and removes the finished ones of a process that was read', () => {
    const change = mirrorChange(
      mirrorOf(job('a'), job('b')),
      { identities: ['host:1:aaa'], jobs: [job('b'), job('c')] },
      undefined,
    );
    expect([...change.set.keys()]).toEqual(['c']);
    expect(change.removed).toEqual(['a']);
    expect([...change.next.keys()].sort()).toEqual(['b', 'c']);
  });

  it('writes nothing when nothing changed', () => {
    const change = mirrorChange(mirrorOf(job('a')), { identities: ['host:1:aaa'], jobs: [job('a')] }, undefined);
    expect(change.set.size).toBe(0);
    expect(change.removed).toEqual([]);
  });

  it('keeps the jobs of a process missing from the read: it may have just been killed', () => {
    const previous = mirrorOf(job('a', 'host:1:dead'), job('b', 'host:2:live'));
    const change = mirrorChange(previous, { identities: ['host:2:live'], jobs: [] }, undefined);
    expect(change.removed).toEqual(['b']);
    expect([...change.next.keys()]).toEqual(['a']);
  });

  it('keeps everything when no process was read', () => {
    const change = mirrorChange(mirrorOf(job('a')), { identities: [], jobs: [] }, undefined);
    expect(change.removed).toEqual([]);
    expect(change.next.size).toBe(1);
  });

  it('ignores jobs of processes not listed as read', () => {
    const change = mirrorChange(
      new Map(),
      { identities: ['host:1:aaa'], jobs: [job('a'), job('x', 'elsewhere:9:zzz')] },
      undefined,
    );
    expect([...change.next.keys()]).toEqual(['a']);
  });

  it('rewrites an entry whose value changed (the same jid on another process)', () => {
    const change = mirrorChange(
      mirrorOf(job('a', 'host:1:old')),
      { identities: ['host:1:new'], jobs: [job('a', 'host:1:new')] },
      undefined,
    );
    expect(change.set.get('a')).toBe(mirroredValue(job('a', 'host:1:new')));
    expect(change.removed).toEqual([]);
  });

  it('mirrors only the queues it is limited to', () => {
    const read = {
      identities: ['host:1:aaa'],
      jobs: [job('a', 'host:1:aaa', 'critical'), job('b', 'host:1:aaa', 'low')],
    };
    expect([...mirrorChange(new Map(), read, new Set(['critical'])).set.keys()]).toEqual(['a']);
  });
});

describe('wholeMirror', () => {
  it('lists every entry for a write after Redis may have lost the record', () => {
    expect(wholeMirror(mirrorOf(job('a'), job('b')))).toEqual(
      new Map([
        ['a', mirroredValue(job('a'))],
        ['b', mirroredValue(job('b'))],
      ]),
    );
  });
});

import { describe, expect, it } from 'vitest';
import { DEAD_JOB_ERROR_CLASS, deadJobEntry, topLevelMembers } from '../../src/recovery/dead-job.js';

const NOW = Date.UTC(2026, 11, 4, 12, 0, 0, 250);
const FACTS = { deaths: 3, lastCause: 'OOM-killed', windowHours: 72, nowEpochMs: NOW };
/** As Sidekiq 6.4.1's client writes a job: a Ruby float keeps its ".0", and a big id is exact. */
const JOB =
  '{"retry":true,"queue":"default","args":[600.0,9007199254740993,{"a":"}]\\"x"}],"class":"HugeJob","jid":"0123456789abcdef01234567","created_at":1795325428.4485722,"enqueued_at":1795325428.4485722}';

describe('the Dead set entry of a job that killed its workers', () => {
  it("keeps the job's bytes and adds Sidekiq's error fields, in its time unit", () => {
    const entry = deadJobEntry(JOB, FACTS) ?? '';
    expect(entry.startsWith(JOB.slice(0, -1))).toBe(true);
    expect(entry).toContain('"args":[600.0,9007199254740993,{"a":"}]\\"x"}]');
    const parsed = JSON.parse(entry) as Record<string, unknown>;
    expect(parsed).toMatchObject({
      jid: '0123456789abcdef01234567',
      class: 'HugeJob',
      error_class: DEAD_JOB_ERROR_CLASS,
      failed_at: 1796385600.25,
    });
    expect(parsed.error_message).toBe(
      'the worker running this job died 3 times in 72 h (last: OOM-killed); drain-init moved it here instead of back to its queue',
    );
  });

  it('replaces earlier error fields rather than repeating them, and writes ms for Sidekiq 8 jobs', () => {
    const failedBefore =
      '{"class":"A","jid":"j","created_at":1795325428448,"error_class":"Boom","failed_at":1,"error_message":"x"}';
    const entry = deadJobEntry(failedBefore, FACTS) ?? '';
    expect(topLevelMembers(entry)?.map((member) => member.key)).toEqual([
      'class',
      'jid',
      'created_at',
      'error_class',
      'error_message',
      'failed_at',
    ]);
    expect((JSON.parse(entry) as { failed_at: number }).failed_at).toBe(NOW);
  });

  it('refuses what is not a JSON object', () => {
    for (const text of ['', '[]', '"x"', '{', '{"a":1', '{"a" 1}', '{"a":1}x', '{"a":tru}']) {
      expect(deadJobEntry(text, FACTS)).toBeUndefined();
    }
    expect(deadJobEntry(' { } ', FACTS)).toContain('"error_class"');
  });
});

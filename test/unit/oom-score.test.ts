import { describe, expect, it } from 'vitest';
import {
  parseOomScore,
  protectFromOomKiller,
  PROTECTED_OOM_SCORE,
  type OomScoreFile,
} from '../../src/process/oom-score.js';
import { captureLogger } from '../helpers/fake.js';

/** /proc/self/oom_score_adj as the kernel keeps it: lowering below the lowest value held needs CAP_SYS_RESOURCE. */
function scoreFile(initial: string, privileged: boolean): OomScoreFile & { score: () => string; writes: number[] } {
  let score = initial;
  let lowest = Number(initial);
  const writes: number[] = [];
  return {
    writes,
    score: () => score,
    read: () => `${score}\n`,
    write: (value) => {
      if (value < lowest && !privileged) throw new Error('EACCES: permission denied');
      if (privileged) lowest = Math.min(lowest, value);
      writes.push(value);
      score = String(value);
    },
  };
}

describe("drain-init's OOM score", () => {
  it('is lowered to -999, and each worker is spawned while drain-init holds the score it inherited', () => {
    const file = scoreFile('300', true);
    const protection = protectFromOomKiller(file, captureLogger().log);
    expect(protection?.inherited).toBe(300);
    expect(file.score()).toBe(String(PROTECTED_OOM_SCORE));

    const seenBySpawn = protection?.spawning(() => file.score());
    expect(seenBySpawn).toBe('300');
    expect(file.score()).toBe('-999');
    expect(file.writes).toEqual([-999, 300, -999]);
  });

  it('is lowered again after a spawn that throws', () => {
    const file = scoreFile('0', true);
    const protection = protectFromOomKiller(file, captureLogger().log);
    expect(() =>
      protection?.spawning(() => {
        throw new Error('spawn failed');
      }),
    ).toThrow('spawn failed');
    expect(file.score()).toBe('-999');
  });

  it('stays as it is without CAP_SYS_RESOURCE, logged at debug', () => {
    const file = scoreFile('0', false);
    const { log, records } = captureLogger();
    expect(protectFromOomKiller(file, log)).toBeUndefined();
    expect(file.score()).toBe('0');
    expect(records).toMatchObject([
      {
        level: 20,
        err: 'EACCES: permission denied',
        msg: 'oom_score_adj not lowered (that needs CAP_SYS_RESOURCE): the OOM killer weighs drain-init by its size alone',
      },
    ]);
  });

  it('is left alone when it is already as low or lower (-1000: never OOM-killed)', () => {
    const file = scoreFile('-1000', true);
    expect(protectFromOomKiller(file, captureLogger().log)).toBeUndefined();
    expect(file.writes).toEqual([]);
  });

  it('warns when a write around a spawn fails, and still spawns', () => {
    const file = scoreFile('0', true);
    const { log, records } = captureLogger();
    const protection = protectFromOomKiller(file, log);
    file.write = () => {
      throw new Error('EPERM');
    };
    expect(protection?.spawning(() => 'spawned')).toBe('spawned');
    expect(records.filter((record) => record.level === 40).map((record) => [record.score, record.msg])).toEqual([
      [0, "could not set drain-init's oom_score_adj"],
      [-999, "could not set drain-init's oom_score_adj"],
    ]);
  });

  it.each([
    ['0\n', 0],
    ['-999', -999],
    ['1000', 1000],
    [' 17 ', 17],
  ])('reads %j as %i', (text, score) => {
    expect(parseOomScore(text)).toBe(score);
  });

  it.each(['', 'abc', '1001', '-1001', '1.5'])('refuses %j', (text) => {
    expect(() => parseOomScore(text)).toThrow('is not a score');
  });

  it('is not lowered from an unreadable score', () => {
    const file = scoreFile('garbage', true);
    expect(protectFromOomKiller(file, captureLogger().log)).toBeUndefined();
    expect(file.writes).toEqual([]);
  });
});

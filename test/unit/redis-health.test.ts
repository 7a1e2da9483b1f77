import { ReplyError } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { classifyRedisError, MAX_WRITE_BACKOFF_MS, RedisHealth } from '../../src/redis/health.js';
import { captureLogger, FakeClock } from '../helpers/fake.js';

const reply = (message: string): Error => new ReplyError(message);

function health(password?: string) {
  const { log, records } = captureLogger();
  const clock = new FakeClock();
  const subject = new RedisHealth(log, 'redis://h:6379/0', password, clock);
  return { subject, clock, records, messages: () => records.map((record) => String(record.msg)) };
}

describe('classifyRedisError', () => {
  it('tells a refusal of writes, a key of another type, a lost connection and a command of its own apart', () => {
    for (const message of [
      "READONLY You can't write against a read only replica.",
      "OOM command not allowed when used memory > 'maxmemory'.",
      'NOAUTH Authentication required.',
      'WRONGPASS invalid username-password pair or user is disabled.',
      "NOPERM this user has no permissions to run the 'hset' command",
      'MISCONF Redis is configured to save RDB snapshots, but it is currently not able to persist on disk.',
    ])
      expect(classifyRedisError(reply(message)), message).toMatchObject({ kind: 'refusing', reason: message });
    expect(
      classifyRedisError(reply('WRONGTYPE Operation against a key holding the wrong kind of value')),
    ).toMatchObject({ kind: 'wrong-type' });
    // From a script: Redis 7 passes the code on; older servers wrap it.
    expect(
      classifyRedisError(
        reply("READONLY You can't write against a read only replica. script: 1a2b, on @user_script:12."),
      ),
    ).toMatchObject({ kind: 'refusing', code: 'READONLY' });
    expect(
      classifyRedisError(
        reply('ERR Error running script (call to f_1a2b): @user_script:12: -WRONGTYPE Operation against a key'),
      ),
    ).toMatchObject({ kind: 'wrong-type' });
    for (const message of ['connect ECONNREFUSED 127.0.0.1:1', 'Connection is closed.', 'Command timed out'])
      expect(classifyRedisError(new Error(message)), message).toMatchObject({ kind: 'down' });
    expect(classifyRedisError(reply("ERR unknown command 'FOO'"))).toMatchObject({ kind: 'other' });
    // A read refused by an ACL is about that command; a lost password refuses reads and writes.
    expect(
      classifyRedisError(reply("NOPERM this user has no permissions to run the 'eval' command"), 'read'),
    ).toMatchObject({ kind: 'other' });
    expect(classifyRedisError(reply('NOAUTH Authentication required.'), 'read')).toMatchObject({ kind: 'refusing' });
    expect(classifyRedisError(new Error('unexpected beat reply 1'))).toMatchObject({ kind: 'other' });
  });
});

describe('RedisHealth', () => {
  it('logs one line when an outage starts and one when it ends, whatever happens in between', () => {
    const { subject, messages } = health();
    expect(subject.state).toBe('connecting');
    subject.succeeded('read');
    expect(subject.state).toBe('up');
    for (let beat = 0; beat < 5; beat++) subject.connectionLost('connect ECONNREFUSED');
    expect(subject.view).toEqual({ state: 'down', reason: 'connect ECONNREFUSED', brokenKeys: [] });
    subject.succeeded('write');
    subject.succeeded('read');
    expect(messages()).toEqual([
      'connected to Redis',
      'Redis unavailable; the worker runs on',
      'Redis available again',
    ]);
  });

  it('keeps a replica refusing writes as one state: reads do not end it, writes back off to 30 s, a write ends it', () => {
    const { subject, clock, messages } = health();
    subject.succeeded('read');
    const readonly = reply("READONLY You can't write against a read only replica.");
    subject.failed(readonly, 'write');
    expect(subject.view.state).toBe('refusing');
    expect(subject.view.reason).toContain('READONLY');
    const gaps: number[] = [];
    let last = clock.now();
    for (let step = 0; step < 200_000 && gaps.length < 8; step += 100) {
      subject.succeeded('read');
      if (subject.writeAllowed()) {
        gaps.push(clock.now() - last);
        last = clock.now();
        subject.failed(readonly, 'write');
      }
      clock.advance(100);
    }
    expect(gaps).toEqual([1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000]);
    expect(subject.state).toBe('refusing');
    // A drop and a reconnection in between are the same outage: no new line for what was logged in it.
    subject.connectionLost('connection closed');
    subject.succeeded('read');
    expect(subject.state).toBe('refusing');
    subject.succeeded('write');
    expect(subject.state).toBe('up');
    expect(subject.writeAllowed()).toBe(true);
    expect(messages()).toEqual([
      'connected to Redis',
      'Redis refuses commands: its writes are tried again at most every 30 s; the worker runs on',
      'Redis unavailable; the worker runs on',
      'Redis available again',
    ]);
    expect(MAX_WRITE_BACKOFF_MS).toBe(30_000);
  });

  it('counts a key of another type as no outage at all, and names the key once until it is usable again', () => {
    const { subject, records } = health();
    subject.succeeded('write');
    expect(subject.failed(reply('WRONGTYPE Operation against a key'), 'write').kind).toBe('wrong-type');
    subject.keyBroken('drain-init:stops', 'string', 'hash', 'WRONGTYPE Operation against a key');
    subject.keyBroken('drain-init:stops', 'string', 'hash', 'WRONGTYPE Operation against a key');
    expect(subject.view).toEqual({ state: 'up', reason: undefined, brokenKeys: ['drain-init:stops'] });
    subject.succeeded('write', ['drain-init:other']);
    expect(subject.view.brokenKeys).toEqual(['drain-init:stops']);
    subject.succeeded('write', ['drain-init:stops']);
    subject.succeeded('write', ['drain-init:stops']);
    expect(subject.view.brokenKeys).toEqual([]);
    expect(records.map((record) => [record.msg, record.key])).toEqual([
      ['connected to Redis', undefined],
      [
        'Redis key drain-init:stops is a string, not the hash drain-init expects there: what uses it fails until it is deleted or mended; the rest works on',
        'drain-init:stops',
      ],
      ['Redis key drain-init:stops is usable again', 'drain-init:stops'],
    ]);
  });

  it('takes NOAUTH on a read as refusing too, and scrubs the password from reasons', () => {
    const { subject, records } = health('hunter2');
    subject.failed(reply('NOAUTH Authentication required.'), 'read');
    expect(subject.state).toBe('refusing');
    expect(subject.writeAllowed()).toBe(false);
    subject.connectionLost('ERR something echoed hunter2');
    expect(JSON.stringify(records)).toContain('ERR something echoed ***');
    expect(JSON.stringify(records)).not.toContain('hunter2');
  });
});

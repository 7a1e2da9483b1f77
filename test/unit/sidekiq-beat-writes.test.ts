import { describe, expect, it } from 'vitest';
import { BeatWriteReader, isBeatWrite, type SeenCommand } from '../../src/sidekiq/beat-writes.js';
import { sidekiqKeys, SIDEKIQ_KEYS } from '../../src/sidekiq/keys.js';
import { capturedDump, hashAt } from '../fixtures/sidekiq-versions/dumps.js';

const IDENTITY = 'vm:27869:ab5cf2f4c0e6';
const WORKERS = `${IDENTITY}:workers`;
/** The two running jobs of the real Sidekiq 6.4.1 capture, as its heartbeat HSETs them. */
const RUNNING = hashAt(capturedDump('run1-01-running'), WORKERS);

const seen = (name: string, ...args: string[]): SeenCommand => ({
  name,
  firstArgument: args[0],
  args: args.map((arg) => Buffer.from(arg)),
});
const jidsOf = (fields: Readonly<Record<string, string>>): string[] =>
  Object.values(fields).map((value) => {
    const payload = JSON.parse(value) as { payload: string };
    return (JSON.parse(payload.payload) as { jid: string }).jid;
  });

/** A beat as Sidekiq 6.4.1 sends it: MULTI, INCRBY..., DEL work, HSET per thread, EXPIRE, EXEC. */
function beat(key: string, fields: Readonly<Record<string, string>>): SeenCommand[] {
  return [
    seen('MULTI'),
    seen('INCRBY', 'stat:processed', '0'),
    seen('DEL', key),
    ...Object.entries(fields).map(([tid, value]) => seen('HSET', key, tid, value)),
    seen('EXPIRE', key, '60'),
    seen('EXEC'),
  ];
}

/** Hands the reader the commands it wants, as the endpoint does. */
function read(reader: BeatWriteReader, commands: SeenCommand[]) {
  return commands.flatMap((command) => (reader.wants(command.name) ? reader.command(command) : []));
}

describe('the heartbeat writes of a worker', () => {
  it('reads the jobs of a real Sidekiq 6.4.1 beat, once it is whole', () => {
    const reader = new BeatWriteReader(SIDEKIQ_KEYS);
    const writes = read(reader, beat(WORKERS, RUNNING));
    expect(writes).toEqual([{ kind: 'work', identity: IDENTITY, jids: new Set(jidsOf(RUNNING)) }]);
    expect(jidsOf(RUNNING)).toHaveLength(2);
  });

  it('reads an idle beat (UNLINK alone, as Sidekiq 8 sends it) as no job running', () => {
    const reader = new BeatWriteReader(SIDEKIQ_KEYS);
    const work = `${IDENTITY}:work`;
    expect(read(reader, [seen('MULTI'), seen('UNLINK', work), seen('EXEC')])).toEqual([
      { kind: 'work', identity: IDENTITY, jids: new Set() },
    ]);
  });

  it('reads one HSET of several threads, and a beat under a namespace', () => {
    const reader = new BeatWriteReader(sidekiqKeys('myapp'));
    const key = `myapp:${WORKERS}`;
    const [first, second] = Object.entries(RUNNING);
    const commands = [
      seen('UNLINK', key),
      seen('HSET', key, ...(first ?? []), ...(second ?? [])),
      seen('EXPIRE', key, '60'),
    ];
    expect(read(reader, commands)).toEqual([{ kind: 'work', identity: IDENTITY, jids: new Set(jidsOf(RUNNING)) }]);
  });

  it('says a beat is unreadable when an entry is not a Sidekiq job, or was too large to capture', () => {
    const reader = new BeatWriteReader(SIDEKIQ_KEYS);
    expect(read(reader, beat(WORKERS, { ku5: 'not json' }))).toEqual([
      expect.objectContaining({ kind: 'unreadable', identity: IDENTITY }),
    ]);
    const huge: SeenCommand = { name: 'HSET', firstArgument: WORKERS, args: undefined };
    expect(read(reader, [seen('DEL', WORKERS), huge, seen('EXEC')])).toEqual([
      { kind: 'unreadable', identity: IDENTITY, reason: 'a work hash write too large to read' },
    ]);
  });

  it('reads a clean stop, and ends a beat under way when the connection closes', () => {
    const reader = new BeatWriteReader(SIDEKIQ_KEYS);
    expect(read(reader, [seen('SREM', 'processes', IDENTITY)])).toEqual([{ kind: 'stopped', identity: IDENTITY }]);
    expect(read(reader, [seen('DEL', WORKERS)])).toEqual([]);
    expect(reader.end()).toEqual([{ kind: 'work', identity: IDENTITY, jids: new Set() }]);
  });

  it('leaves alone what is not a work hash or a process of this namespace', () => {
    const reader = new BeatWriteReader(SIDEKIQ_KEYS);
    const others = [
      seen('DEL', 'queue:default'),
      seen('HSET', 'some:hash', 'a', 'b'),
      seen('DEL', 'myapp:vm:1:abc:work', 'x'),
      seen('SREM', 'myapp:processes', IDENTITY),
      seen('UNLINK', 'not-an-identity:work'),
    ];
    expect(read(reader, others)).toEqual([]);
    expect(reader.end()).toEqual([]);
    expect(isBeatWrite(SIDEKIQ_KEYS, 'HSET', WORKERS)).toBe(true);
    expect(isBeatWrite(SIDEKIQ_KEYS, 'HSET', 'some:hash')).toBe(false);
    expect(isBeatWrite(SIDEKIQ_KEYS, 'SREM', 'processes')).toBe(true);
    expect(isBeatWrite(SIDEKIQ_KEYS, 'GET', WORKERS)).toBe(false);
  });
});

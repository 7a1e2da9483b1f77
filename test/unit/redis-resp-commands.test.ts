import { describe, expect, it } from 'vitest';
import {
  CommandScanner,
  MAX_FIRST_ARGUMENT_BYTES,
  REDIS_COMMAND_LIMITS,
  splitInlineArguments,
  type CapturePolicy,
  type ScannedCommand,
} from '../../src/redis/resp-commands.js';
import { ProtocolError } from '../../src/redis/resp-error.js';
import { cutAt, splits } from '../helpers/chunks.js';

interface Seen {
  readonly name: string;
  readonly argCount: number;
  readonly args: string[] | undefined;
}

interface Scan {
  readonly commands: Seen[];
  /** Forwarded bytes and captured commands' raw bytes, in the order the scanner handed them out. */
  readonly output: Buffer;
  readonly forwards: Buffer[];
}

const NOTHING: CapturePolicy = () => 0;
const EVERYTHING: CapturePolicy = () => Infinity;

/** Feeds the chunks (each copied into its own memory) and records what the scanner reports. */
function scan(
  chunks: readonly Buffer[],
  capture: CapturePolicy = NOTHING,
  scanner = new CommandScanner(capture),
): Scan {
  const commands: Seen[] = [];
  const output: Buffer[] = [];
  const forwards: Buffer[] = [];
  const own = chunks.map((chunk) => {
    const copy = Buffer.alloc(chunk.length);
    chunk.copy(copy);
    return copy;
  });
  const memories = new Set<ArrayBufferLike>(own.map((chunk) => chunk.buffer));
  for (const chunk of own) {
    const consumed = scanner.feed(chunk, {
      forward: (bytes) => {
        // Passed through, never copied: every forwarded piece is a view of an input chunk.
        expect(memories.has(bytes.buffer)).toBe(true);
        forwards.push(bytes);
        output.push(bytes);
      },
      command: (command: ScannedCommand) => {
        commands.push({
          name: command.name,
          argCount: command.argCount,
          args: command.args?.map((arg) => arg.toString('latin1')),
        });
        expect(command.raw === undefined).toBe(command.args === undefined);
        if (command.raw !== undefined) expectWholeCommand(Buffer.concat(command.raw), command);
        output.push(...(command.raw ?? []));
        return false;
      },
    });
    expect(consumed).toBe(chunk.length);
  }
  return { commands, output: Buffer.concat(output), forwards };
}

/** A captured command's raw bytes are the whole command, none of it forwarded before: they scan as just it. */
function expectWholeCommand(raw: Buffer, command: ScannedCommand): void {
  const again: ScannedCommand[] = [];
  const scanner = new CommandScanner(EVERYTHING);
  scanner.feed(raw, { forward: () => {}, command: (found) => again.push(found) < 0 });
  expect(scanner.atBoundary).toBe(true);
  expect(again.map(({ name, args }) => ({ name, args }))).toEqual([{ name: command.name, args: command.args }]);
}

function resp(...args: string[]): string {
  return `*${args.length}\r\n${args.map((arg) => `$${Buffer.byteLength(arg, 'latin1')}\r\n${arg}\r\n`).join('')}`;
}

/** The same result however the stream is cut, and the output is always the input, byte for byte. */
function expectSplitInvariant(input: string | Buffer, capture: CapturePolicy, expected: Seen[]): void {
  const bytes = typeof input === 'string' ? Buffer.from(input, 'latin1') : input;
  for (const { label, chunks } of splits(bytes)) {
    const result = scan(chunks, capture);
    expect(result.commands, label).toEqual(expected);
    expect(result.output.equals(bytes), label).toBe(true);
  }
}

function protocolError(input: string | Buffer, capture: CapturePolicy = NOTHING): ProtocolError {
  const bytes = typeof input === 'string' ? Buffer.from(input, 'latin1') : input;
  const errors = new Set<string>();
  let first: ProtocolError | undefined;
  for (const { chunks } of splits(bytes, 10)) {
    try {
      scan(chunks, capture);
    } catch (error) {
      if (!(error instanceof ProtocolError)) throw error;
      first ??= error;
      errors.add(error.message);
      continue;
    }
    throw new Error('no ProtocolError');
  }
  // Wherever the stream is cut, the same error.
  expect([...errors]).toHaveLength(1);
  return first as ProtocolError;
}

describe('CommandScanner: multibulk', () => {
  it('reports each command with its upper-cased name, captured or not, and passes every byte through', () => {
    const input = resp('ping') + resp('Set', 'key', 'va\r\nlue') + resp('brpop', 'queue:a', 'queue:b', '2');
    expectSplitInvariant(input, NOTHING, [
      { name: 'PING', argCount: 0, args: undefined },
      { name: 'SET', argCount: 2, args: undefined },
      { name: 'BRPOP', argCount: 3, args: undefined },
    ]);
    expectSplitInvariant(input, EVERYTHING, [
      { name: 'PING', argCount: 0, args: [] },
      { name: 'SET', argCount: 2, args: ['key', 'va\r\nlue'] },
      { name: 'BRPOP', argCount: 3, args: ['queue:a', 'queue:b', '2'] },
    ]);
  });

  it('captures only what the policy asks for', () => {
    const input = resp('GET', 'a') + resp('BRPOP', 'queue:a', '2') + resp('SET', 'b', 'c');
    expectSplitInvariant(input, (name) => (name === 'BRPOP' ? 1024 : 0), [
      { name: 'GET', argCount: 1, args: undefined },
      { name: 'BRPOP', argCount: 2, args: ['queue:a', '2'] },
      { name: 'SET', argCount: 2, args: undefined },
    ]);
  });

  it('reports a command over its byte budget as not captured, and still forwards it whole', () => {
    const small = resp('HSET', 'k', 'f', 'v');
    const big = resp('HSET', 'k', 'f', 'x'.repeat(500));
    expectSplitInvariant(small + big, () => 100, [
      { name: 'HSET', argCount: 3, args: ['k', 'f', 'v'] },
      { name: 'HSET', argCount: 3, args: undefined },
    ]);
    // The budget counts the command's bytes as sent: exactly at it is captured, one byte less is not.
    const length = Buffer.byteLength(small);
    expect(scan([Buffer.from(small)], () => length).commands[0]?.args).toEqual(['k', 'f', 'v']);
    expect(scan([Buffer.from(small)], () => length - 1).commands[0]?.args).toBeUndefined();
  });

  it('asks about the first argument before capturing when the policy wants to see it', () => {
    const asked: string[] = [];
    const policy: CapturePolicy = (name) =>
      name === 'HSET'
        ? {
            firstArgument: (first) => {
              asked.push(first.toString());
              return first.toString().endsWith(':work') ? 4096 : 0;
            },
          }
        : 0;
    const input = resp('HSET', 'app:cache', 'f', 'v') + resp('HSET', 'host:1:work', 'tid', '{}') + resp('HSET');
    expectSplitInvariant(input, policy, [
      { name: 'HSET', argCount: 3, args: undefined },
      { name: 'HSET', argCount: 3, args: ['host:1:work', 'tid', '{}'] },
      // No first argument to ask about: captured as it is.
      { name: 'HSET', argCount: 0, args: [] },
    ]);
    expect(asked.slice(0, 2)).toEqual(['app:cache', 'host:1:work']);
  });

  it('does not peek at a first argument larger than 64 KiB', () => {
    const policy: CapturePolicy = () => ({ firstArgument: () => Infinity });
    const input = resp('SET', 'k'.repeat(MAX_FIRST_ARGUMENT_BYTES + 1), 'v');
    expect(scan([Buffer.from(input)], policy).commands).toEqual([{ name: 'SET', argCount: 2, args: undefined }]);
  });

  it('passes empty multibulks through without reporting a command (redis-server replies nothing)', () => {
    expectSplitInvariant('*0\r\n*-1\r\n' + resp('PING') + '*-5\r\n', EVERYTHING, [
      { name: 'PING', argCount: 0, args: [] },
    ]);
  });

  it('reports a name no command has (over 256 bytes) as the empty string and streams it', () => {
    expectSplitInvariant(resp('x'.repeat(300), 'a'), EVERYTHING, [{ name: '', argCount: 1, args: undefined }]);
    expectSplitInvariant(resp('', 'a'), EVERYTHING, [{ name: '', argCount: 1, args: ['a'] }]);
  });

  it('upper-cases ASCII letters only, as redis-server compares names', () => {
    expect(scan([Buffer.from(resp('hgetALL'))]).commands[0]?.name).toBe('HGETALL');
    expect(scan([Buffer.from(resp('caf\xe9'), 'latin1')]).commands[0]?.name).toBe('CAF\xe9');
  });

  it('streams an uncaptured bulk of 10 MB: every byte fed is forwarded before the next chunk, none held', () => {
    const size = 10 * 1024 * 1024;
    const input = Buffer.concat([
      Buffer.from(`*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$${size}\r\n`),
      Buffer.alloc(size, 0x61),
      Buffer.from('\r\n'),
    ]);
    const scanner = new CommandScanner(NOTHING);
    let forwarded = 0;
    let fed = 0;
    const commands: string[] = [];
    for (const chunk of cutAt(
      input,
      Array.from({ length: Math.ceil(input.length / 65536) }, (_, i) => i * 65536),
    )) {
      scanner.feed(chunk, {
        forward: (bytes) => void (forwarded += bytes.length),
        command: (command) => {
          commands.push(command.name);
          return false;
        },
      });
      fed += chunk.length;
      expect(forwarded).toBe(fed);
    }
    expect(commands).toEqual(['SET']);
  });

  it('holds the start of a command until its name is known, then lets it go', () => {
    const scanner = new CommandScanner(NOTHING);
    const forwarded: string[] = [];
    const sink = {
      forward: (bytes: Buffer) => void forwarded.push(bytes.toString()),
      command: () => false,
    };
    scanner.feed(Buffer.from('*2\r\n$3\r\nG'), sink);
    expect(forwarded).toEqual([]);
    scanner.feed(Buffer.from('ET\r\n$1\r\nk'), sink);
    expect(forwarded.join('')).toBe('*2\r\n$3\r\nGET\r\n$1\r\nk');
  });
});

describe('CommandScanner: stopping after a command', () => {
  it('returns the offset after the command the sink stopped at; the rest scans later', () => {
    const input = Buffer.from(resp('GET', 'a') + resp('BRPOP', 'q', '2') + resp('GET', 'b'));
    const scanner = new CommandScanner(EVERYTHING);
    const events: string[] = [];
    const sink = {
      forward: (bytes: Buffer) => void events.push(`forward ${bytes.length}`),
      command: (command: ScannedCommand) => {
        events.push(`${command.name} raw ${Buffer.concat(command.raw ?? []).length}`);
        return command.name === 'BRPOP';
      },
    };
    const first = resp('GET', 'a').length;
    const stopAt = first + resp('BRPOP', 'q', '2').length;
    expect(scanner.feed(input, sink)).toBe(stopAt);
    expect(scanner.atBoundary).toBe(true);
    // The captured GET before it was handed over raw; nothing else was forwarded.
    expect(events).toEqual([`GET raw ${first}`, `BRPOP raw ${stopAt - first}`]);
    expect(scanner.feed(input.subarray(stopAt), sink)).toBe(input.length - stopAt);
    expect(events.at(-1)).toBe(`GET raw ${input.length - stopAt}`);
  });

  it('forwards the bytes of an uncaptured command it stops at before returning', () => {
    const input = Buffer.from(resp('PING') + resp('PING'));
    const forwarded: Buffer[] = [];
    const consumed = new CommandScanner(NOTHING).feed(input, {
      forward: (bytes) => void forwarded.push(bytes),
      command: () => true,
    });
    expect(consumed).toBe(resp('PING').length);
    expect(Buffer.concat(forwarded).toString()).toBe(resp('PING'));
  });
});

describe('CommandScanner: inline commands', () => {
  it('splits lines as redis-server does and passes them through unchanged', () => {
    const input = 'PING\r\nset "a b" \'c\\\'d\'\r\n\r\n   \r\necho "\\x41\\n"\nGET k\n';
    expectSplitInvariant(input, EVERYTHING, [
      { name: 'PING', argCount: 0, args: [] },
      { name: 'SET', argCount: 2, args: ['a b', "c'd"] },
      { name: 'ECHO', argCount: 1, args: ['A\n'] },
      { name: 'GET', argCount: 1, args: ['k'] },
    ]);
    expectSplitInvariant(input, NOTHING, [
      { name: 'PING', argCount: 0, args: undefined },
      { name: 'SET', argCount: 2, args: undefined },
      { name: 'ECHO', argCount: 1, args: undefined },
      { name: 'GET', argCount: 1, args: undefined },
    ]);
  });

  it('mixes inline and multibulk commands', () => {
    expectSplitInvariant('PING\r\n' + resp('GET', 'a') + 'QUIT\r\n', EVERYTHING, [
      { name: 'PING', argCount: 0, args: [] },
      { name: 'GET', argCount: 1, args: ['a'] },
      { name: 'QUIT', argCount: 0, args: [] },
    ]);
  });

  it('accepts a 64 KiB line and refuses a longer one', () => {
    const arg = 'x'.repeat(REDIS_COMMAND_LIMITS.maxInlineBytes - 'ECHO '.length);
    expect(scan([Buffer.from(`ECHO ${arg}\r\n`)]).commands).toEqual([{ name: 'ECHO', argCount: 1, args: undefined }]);
    expect(protocolError(`ECHO ${arg}x\r\n`).message).toBe('Protocol error: too big inline request');
    // Without a line end, as soon as more than 64 KiB is buffered.
    expect(() => scan([Buffer.alloc(REDIS_COMMAND_LIMITS.maxInlineBytes + 2, 0x61)])).toThrow('too big inline request');
  });
});

describe('splitInlineArguments', () => {
  const split = (line: string): string[] | undefined =>
    splitInlineArguments(Buffer.from(line, 'latin1'))?.map((token) => token.toString('latin1'));

  it.each([
    ['a b  c', ['a', 'b', 'c']],
    ['\t a\x0bb ', ['a\x0bb']],
    ['"a b" c', ['a b', 'c']],
    ['ab"c d"', ['abc d']],
    ['"\\x41\\x4a\\xzz\\n\\r\\t\\b\\a\\q\\\\"', ['AJxzz\n\r\t\b\x07q\\']],
    ["'a \\' \\n b'", ["a ' \\n b"]],
    ['""', ['']],
    ["''", ['']],
    ['', []],
  ])('%j → %j', (line, tokens) => {
    expect(split(line)).toEqual(tokens);
  });

  it.each(['"abc', "'abc", '"a"b', "'a'b", '"abc\\"'])('%j has unbalanced quotes', (line) => {
    expect(split(line)).toBeUndefined();
  });
});

describe('CommandScanner: limits and garbage', () => {
  it('accepts a bulk of exactly 512 MiB and refuses one byte more (proto-max-bulk-len)', () => {
    const at = `*2\r\n$3\r\nSET\r\n$${REDIS_COMMAND_LIMITS.maxBulkBytes}\r\n`;
    expect(() => scan([Buffer.from(at)])).not.toThrow();
    expect(protocolError(`*2\r\n$3\r\nSET\r\n$${REDIS_COMMAND_LIMITS.maxBulkBytes + 1}\r\n`).message).toBe(
      'Protocol error: invalid bulk length',
    );
    expect(protocolError('*1\r\n$600000000\r\n').message).toBe('Protocol error: invalid bulk length');
  });

  it('accepts INT_MAX arguments and refuses more (redis 7.0)', () => {
    expect(() => scan([Buffer.from(`*${2 ** 31 - 1}\r\n`)])).not.toThrow();
    expect(protocolError(`*${2 ** 31}\r\n`).message).toBe('Protocol error: invalid multibulk length');
  });

  it('honours smaller limits when given', () => {
    const limits = { maxBulkBytes: 3, maxArguments: 2, maxInlineBytes: 4 };
    const scanWithLimits = (input: string): Scan =>
      scan([Buffer.from(input)], NOTHING, new CommandScanner(NOTHING, limits));
    expect(scanWithLimits(resp('GET', 'abc')).commands).toHaveLength(1);
    expect(() => scanWithLimits(resp('GET', 'abcd'))).toThrow('invalid bulk length');
    expect(() => scanWithLimits('*3\r\n')).toThrow('invalid multibulk length');
    expect(() => scanWithLimits('GET ab\r\n')).toThrow('too big inline request');
  });

  it.each([
    ['*x\r\n', 'Protocol error: invalid multibulk length'],
    ['*\r\n', 'Protocol error: invalid multibulk length'],
    ['*01\r\n', 'Protocol error: invalid multibulk length'],
    ['*-0\r\n', 'Protocol error: invalid multibulk length'],
    ['*1\n', 'Protocol error: invalid multibulk length'],
    ['*1\r\r', 'Protocol error: invalid multibulk length'],
    ['*1 \r\n', 'Protocol error: invalid multibulk length'],
    ['*99999999999999999999\r\n', 'Protocol error: invalid multibulk length'],
    ['*1\r\nX', "Protocol error: expected '$', got 'X'"],
    ['*1\r\n\x00', "Protocol error: expected '$', got byte 0x00"],
    ['*1\r\n\r', "Protocol error: expected '$', got byte 0x0d"],
    ['*1\r\n$-1\r\n', 'Protocol error: invalid bulk length'],
    ['*1\r\n$x\r\n', 'Protocol error: invalid bulk length'],
    ['*1\r\n$3\r\nabcX', 'Protocol error: expected CRLF after a bulk argument'],
    ['*1\r\n$3\r\nabc\rX', 'Protocol error: expected CRLF after a bulk argument'],
    ['SET "a\r\n', 'Protocol error: unbalanced quotes in request'],
    ['GET a\x00b\r\n', 'Protocol error: NUL byte in inline request'],
  ])('%j: %s', (input, message) => {
    expect(protocolError(input).message).toBe(message);
  });

  it('never echoes the input: one short line, no control characters', () => {
    for (let byte = 0; byte < 256; byte++) {
      if (byte === 0x24) continue;
      const error = protocolError(
        Buffer.concat([Buffer.from('*1\r\n'), Buffer.from([byte]), Buffer.from('secret\r\n')]),
      );
      expect(error.message).not.toMatch(/[\x00-\x1f\x7f-\xff]|secret/);
    }
  });
});

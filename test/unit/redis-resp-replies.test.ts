import { describe, expect, it } from 'vitest';
import {
  appendBulks,
  encodeBulkArray,
  encodeBulkArrayHead,
  encodeError,
  encodeNullArray,
} from '../../src/redis/resp-encode.js';
import { ProtocolError } from '../../src/redis/resp-error.js';
import { MAX_REPLY_DEPTH, ReplyScanner, type FrameKind } from '../../src/redis/resp-replies.js';
import { decodeReply, RespError, RespMap, type RespValue } from '../../src/redis/resp-values.js';
import { cutAt, splits } from '../helpers/chunks.js';

interface Frame {
  readonly bytes: string;
  readonly kind: FrameKind;
}

/** Feeds the chunks and cuts the stream at the frame ends the scanner reports. */
function frames(chunks: readonly Buffer[], scanner = new ReplyScanner()): Frame[] {
  const found: Frame[] = [];
  let pending: Buffer[] = [];
  for (const chunk of chunks) {
    let start = 0;
    scanner.feed(chunk, (end, kind) => {
      found.push({ bytes: Buffer.concat([...pending, chunk.subarray(start, end)]).toString('latin1'), kind });
      pending = [];
      start = end;
      return false;
    });
    if (start < chunk.length) pending.push(chunk.subarray(start));
  }
  expect(scanner.atBoundary).toBe(pending.length === 0);
  return found;
}

function expectFrames(expected: readonly Frame[]): void {
  const bytes = Buffer.from(expected.map((frame) => frame.bytes).join(''), 'latin1');
  for (const { label, chunks } of splits(bytes)) expect(frames(chunks), label).toEqual(expected);
}

function protocolError(input: string): ProtocolError {
  const messages = new Set<string>();
  let first: ProtocolError | undefined;
  for (const { chunks } of splits(Buffer.from(input, 'latin1'), 10)) {
    try {
      frames(chunks);
    } catch (error) {
      if (!(error instanceof ProtocolError)) throw error;
      first ??= error;
      messages.add(error.message);
      continue;
    }
    throw new Error('no ProtocolError');
  }
  expect([...messages]).toHaveLength(1);
  return first as ProtocolError;
}

const reply = (bytes: string): Frame => ({ bytes, kind: 'reply' });

describe('ReplyScanner', () => {
  it('delimits every RESP2 type', () => {
    expectFrames([
      reply('+OK\r\n'),
      { bytes: '-ERR unknown command\r\n', kind: 'error' },
      reply(':-42\r\n'),
      reply('$5\r\nhe\r\nl\r\n'),
      reply('$0\r\n\r\n'),
      reply('$-1\r\n'),
      reply('*-1\r\n'),
      reply('*0\r\n'),
      reply('*3\r\n:1\r\n$1\r\na\r\n*2\r\n+x\r\n-nested error\r\n'),
    ]);
  });

  it('delimits every RESP3 type', () => {
    expectFrames([
      reply('_\r\n'),
      reply('#t\r\n'),
      reply(',3.141\r\n'),
      reply(',-inf\r\n'),
      reply('(1234567999999999999999999999999999999\r\n'),
      { bytes: '!21\r\nSYNTAX invalid syntax\r\n', kind: 'error' },
      reply('=29\r\ntxt:This is a verbatim\nstring\r\n'),
      reply('%3\r\n:0\r\n#f\r\n:1\r\n#t\r\n:2\r\n#f\r\n'),
      reply('~3\r\n:0\r\n:1\r\n:2\r\n'),
      reply('%0\r\n'),
      reply('~0\r\n'),
      { bytes: '>2\r\n$16\r\nserver-cpu-usage\r\n:42\r\n', kind: 'push' },
    ]);
  });

  it('makes an attribute part of the frame that follows it, at the top and inside aggregates', () => {
    expectFrames([
      reply('|1\r\n$14\r\nkey-popularity\r\n*2\r\n$7\r\nkey:123\r\n:90\r\n$5\r\nreply\r\n'),
      reply('*2\r\n|1\r\n+a\r\n+b\r\n:1\r\n:2\r\n'),
      { bytes: '|1\r\n+a\r\n+b\r\n-ERR after attribute\r\n', kind: 'error' },
      { bytes: '|1\r\n+a\r\n+b\r\n>1\r\n+pushed\r\n', kind: 'push' },
      reply('|0\r\n+OK\r\n'),
    ]);
  });

  it('follows streamed strings and aggregates', () => {
    expectFrames([
      reply('$?\r\n;4\r\nHell\r\n;6\r\no worl\r\n;1\r\nd\r\n;0\r\n'),
      reply('*?\r\n:1\r\n$?\r\n;1\r\na\r\n;0\r\n*?\r\n.\r\n.\r\n'),
      reply('%?\r\n+a\r\n:1\r\n+b\r\n:2\r\n.\r\n'),
      reply('~?\r\n+a\r\n.\r\n'),
    ]);
  });

  it('tells pushes from replies, as a relay needs to match replies to commands', () => {
    expectFrames([
      { bytes: '>3\r\n$10\r\ninvalidate\r\n*1\r\n$3\r\nkey\r\n_\r\n', kind: 'push' },
      reply('+OK\r\n'),
      { bytes: '>3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n', kind: 'push' },
    ]);
  });

  it('stops at the frame end where onFrame returns true', () => {
    const input = Buffer.from('+A\r\n+B\r\n+C\r\n');
    const scanner = new ReplyScanner();
    const ends: number[] = [];
    const stopAtSecond = (end: number): boolean => ends.push(end) === 2;
    expect(scanner.feed(input, stopAtSecond)).toBe(8);
    expect(scanner.feed(input.subarray(8), stopAtSecond)).toBe(4);
    expect(ends).toEqual([4, 8, 4]);
  });

  it('streams a 10 MB bulk: no frame until its last byte, then one', () => {
    const size = 10 * 1024 * 1024;
    const input = Buffer.concat([Buffer.from(`$${size}\r\n`), Buffer.alloc(size, 0x62), Buffer.from('\r\n+OK\r\n')]);
    const scanner = new ReplyScanner();
    const ends: number[] = [];
    let offset = 0;
    for (const chunk of cutAt(
      input,
      Array.from({ length: 200 }, (_, i) => i * 65536),
    )) {
      scanner.feed(chunk, (end) => ends.push(offset + end) < 0);
      offset += chunk.length;
    }
    expect(ends).toEqual([input.length - 5, input.length]);
  });

  it('accepts nesting up to its depth limit and refuses deeper', () => {
    const nested = (depth: number): Buffer => Buffer.from('*1\r\n'.repeat(depth) + ':1\r\n');
    expect(frames([nested(MAX_REPLY_DEPTH)])).toHaveLength(1);
    expect(() => frames([nested(MAX_REPLY_DEPTH + 1)])).toThrow('Protocol error: reply nested too deep');
  });

  it.each([
    ['?', "Protocol error: unknown reply type '?'"],
    ['\x16\x03\x01', 'Protocol error: unknown reply type byte 0x16'],
    ['HTTP/1.1 400', "Protocol error: unknown reply type 'H'"],
    ['+OK\n', 'Protocol error: expected CRLF at the end of a line'],
    ['$3\r\nabcd', 'Protocol error: expected CRLF after a bulk string'],
    ['$-2\r\n', "Protocol error: invalid length in a header of type '$'"],
    ['%-1\r\n', "Protocol error: invalid length in a header of type '%'"],
    ['*x\r\n', "Protocol error: invalid length in a header of type '*'"],
    ['>?\r\n', "Protocol error: invalid length in a header of type '>'"],
    ['.\r\n', "Protocol error: '.' outside a streamed aggregate"],
    ['*1\r\n.\r\n', "Protocol error: '.' outside a streamed aggregate"],
    ['$?\r\n+x\r\n', "Protocol error: expected ';' in a streamed string, got '+'"],
    ['*?\r\n.x\r\n', 'Protocol error: expected CRLF after a bulk string'],
  ])('%j: %s', (input, message) => {
    expect(protocolError(input).message).toBe(message);
  });
});

describe('decodeReply', () => {
  const decode = (bytes: string): RespValue => decodeReply(Buffer.from(bytes, 'latin1'));
  const text = (value: RespValue): unknown =>
    Buffer.isBuffer(value)
      ? value.toString('latin1')
      : Array.isArray(value)
        ? value.map(text)
        : value instanceof RespMap
          ? value.entries.map(([key, entry]) => [text(key), text(entry)])
          : value;

  it.each<[string, unknown]>([
    ['+OK\r\n', 'OK'],
    [':42\r\n', 42],
    [':-9007199254740993\r\n', -9007199254740993n],
    [':1234567890123456\r\n', 1234567890123456],
    [':-15\r\n', -15],
    ['$3\r\na\r\n\r\n', 'a\r\n'],
    ['$-1\r\n', null],
    ['*-1\r\n', null],
    ['_\r\n', null],
    ['#t\r\n', true],
    ['#f\r\n', false],
    [',3.5\r\n', 3.5],
    [',inf\r\n', Infinity],
    [',-inf\r\n', -Infinity],
    ['(1234567999999999999999999999999999999\r\n', 1234567999999999999999999999999999999n],
    ['=15\r\ntxt:Some string\r\n', 'Some string'],
    ['*2\r\n$7\r\nqueue:a\r\n$9\r\n{"jid":1}\r\n', ['queue:a', '{"jid":1}']],
    ['~2\r\n:1\r\n:2\r\n', [1, 2]],
    [
      '%2\r\n+a\r\n:1\r\n+b\r\n*0\r\n',
      [
        ['a', 1],
        ['b', []],
      ],
    ],
    ['|1\r\n+ttl\r\n:3600\r\n$1\r\nv\r\n', 'v'],
    ['*2\r\n|1\r\n+a\r\n+b\r\n:1\r\n:2\r\n', [1, 2]],
    ['$?\r\n;2\r\nab\r\n;1\r\nc\r\n;0\r\n', 'abc'],
    ['*?\r\n:1\r\n*?\r\n.\r\n.\r\n', [1, []]],
    ['%?\r\n+k\r\n+v\r\n.\r\n', [['k', 'v']]],
  ])('%j', (bytes, expected) => {
    expect(text(decode(bytes))).toEqual(expected);
  });

  it('decodes nan', () => {
    expect(decode(',nan\r\n')).toBeNaN();
  });

  it('gives error replies as RespError values, also inside arrays', () => {
    expect(decode('-NOSCRIPT No matching script\r\n')).toEqual(new RespError('NOSCRIPT No matching script'));
    expect(decode('!9\r\nERR oh no\r\n')).toEqual(new RespError('ERR oh no'));
    const [ok, error] = decode('*2\r\n+OK\r\n-WRONGTYPE x\r\n') as RespValue[];
    expect(text(ok ?? null)).toBe('OK');
    expect(error).toBeInstanceOf(RespError);
  });

  it('decodes 8,000 levels without running out of stack (a Lua script can nest that deep)', () => {
    let value = decode('*1\r\n'.repeat(8000) + ':7\r\n');
    for (let depth = 0; depth < 8000; depth++) value = (value as RespValue[])[0] ?? null;
    expect(value).toBe(7);
  });

  it.each([
    '',
    '+OK',
    '+OK\r\n+OK\r\n',
    '$3\r\nab\r\n',
    '*2\r\n:1\r\n',
    '#x\r\n',
    ':1.5\r\n',
    ',x\r\n',
    '.\r\n',
    '@\r\n',
    '$-2\r\n',
    '$1x\r\na\r\n',
    '*-\r\n',
    ':\r\n',
    '$2\r\nab\n\r',
  ])('%j is refused', (bytes) => {
    expect(() => decode(bytes)).toThrow(ProtocolError);
  });
});

describe('encoders', () => {
  it('encodes a command as a multibulk of bulk strings, binary-safe', () => {
    const encoded = encodeBulkArray(['EVALSHA', Buffer.from([0, 13, 10, 255]), 'é']);
    expect(encoded.toString('latin1')).toBe('*3\r\n$7\r\nEVALSHA\r\n$4\r\n\x00\r\n\xff\r\n$2\r\n\xc3\xa9\r\n');
    expect(encodeBulkArray([]).toString()).toBe('*0\r\n');
  });

  it('encodes a command in two parts, its head once and its last arguments each time, as one whole', () => {
    const items = ['EVALSHA', 'é', Buffer.from('queue:a'), 'x'.repeat(12), 'fetch-1'];
    const head = encodeBulkArrayHead(items.length, items.slice(0, 3));
    expect(appendBulks(head, items.slice(3))).toEqual(encodeBulkArray(items));
    expect(appendBulks(encodeBulkArrayHead(1, []), ['PING']).toString()).toBe('*1\r\n$4\r\nPING\r\n');
  });

  it('round-trips through the decoder', () => {
    const items = [Buffer.from('queue:a'), Buffer.alloc(70_000, 7)];
    expect(decodeReply(encodeBulkArray(items))).toEqual(items);
    // Strings whose UTF-8 length, not their character count, crosses 10 and 100 bytes: headers sized in bytes.
    const strings = ['é'.repeat(4) + 'x', 'é'.repeat(5), 'é'.repeat(49) + 'x', 'é'.repeat(50), ''];
    expect(decodeReply(encodeBulkArray(strings))).toEqual(strings.map((text) => Buffer.from(text)));
  });

  it('encodes "no array" per protocol: RESP2 null array, RESP3 null', () => {
    expect(encodeNullArray(2).toString()).toBe('*-1\r\n');
    expect(encodeNullArray(3).toString()).toBe('_\r\n');
    expect(decodeReply(encodeNullArray(2))).toBeNull();
    expect(decodeReply(encodeNullArray(3))).toBeNull();
  });

  it('encodes an error reply on one line', () => {
    expect(encodeError('ERR a\r\nb\nc').toString()).toBe('-ERR a  b c\r\n');
  });
});

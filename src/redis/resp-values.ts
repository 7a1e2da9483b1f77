import { ProtocolError } from './resp-error.js';

/** An error reply (`-` or `!`): the message is the text after the type byte, such as `NOSCRIPT No matching script`. */
export class RespError extends Error {
  override readonly name = 'RespError';
}

/** A RESP3 map, its pairs in the order received (keys are often Buffers, which a Map would compare by identity). */
export class RespMap {
  constructor(readonly entries: readonly (readonly [RespValue, RespValue])[]) {}
}

/**
 * A decoded reply: bulk, simple and verbatim strings as Buffers (a verbatim string without its `txt:` prefix),
 * integers as numbers (bigint beyond 2^53), doubles as numbers, big numbers as bigint, booleans, null for every
 * null, arrays, sets and pushes as arrays, maps as RespMap, errors as RespError values. Attributes are dropped.
 */
export type RespValue = null | boolean | number | bigint | Buffer | RespError | RespMap | readonly RespValue[];

interface OpenAggregate {
  readonly type: number;
  /** Values expected (pairs count twice), or STREAMED until `.`. */
  readonly size: number;
  readonly items: RespValue[];
}

const STREAMED = -1;
const CRLF = '\r\n';

/** Decodes one whole frame (as the ReplyScanner delimits it). Incomplete or malformed bytes throw a ProtocolError. */
export function decodeReply(frame: Buffer): RespValue {
  const open: OpenAggregate[] = [];
  let pos = 0;
  for (;;) {
    const type = frame[pos];
    const lineEnd = frame.indexOf(CRLF, pos + 1);
    if (type === undefined || lineEnd === -1) throw new ProtocolError('incomplete reply');
    const line = frame.subarray(pos + 1, lineEnd);
    pos = lineEnd + 2;
    let value: RespValue | undefined;
    switch (String.fromCharCode(type)) {
      case '+':
        value = line;
        break;
      case '-':
        value = new RespError(line.toString());
        break;
      case ':':
        value = integer(line);
        break;
      case ',':
        value = double(line);
        break;
      case '(':
        value = BigInt(digits(line));
        break;
      case '#':
        value = boolean(line);
        break;
      case '_':
        value = null;
        break;
      case '$':
      case '!':
      case '=': {
        const body = isStreamed(line) && type === 0x24 ? streamedString(frame, pos) : bulk(frame, pos, line);
        pos = body.end;
        value =
          body.value === null || type === 0x24
            ? body.value
            : type === 0x21
              ? new RespError(body.value.toString())
              : body.value.subarray(4);
        break;
      }
      case '*':
      case '~':
      case '>':
      case '%':
      case '|': {
        if (isStreamed(line) && type !== 0x3e && type !== 0x7c) {
          open.push({ type, size: STREAMED, items: [] });
          break;
        }
        const count = length(line);
        if (count === -1 && type === 0x2a) {
          value = null;
          break;
        }
        if (count < 0) throw new ProtocolError('invalid aggregate length');
        const size = type === 0x25 || type === 0x7c ? 2 * count : count;
        if (size > 0) open.push({ type, size, items: [] });
        else value = finish({ type, size, items: [] });
        break;
      }
      case '.': {
        const streamed = open.pop();
        if (line.length !== 0 || streamed?.size !== STREAMED)
          throw new ProtocolError("'.' outside a streamed aggregate");
        value = finish(streamed);
        break;
      }
      default:
        throw new ProtocolError('unknown reply type');
    }
    // Place the value in its aggregates; a completed aggregate is in turn a value of its parent.
    while (value !== undefined) {
      const parent = open.at(-1);
      if (parent === undefined) {
        if (pos !== frame.length) throw new ProtocolError('bytes after the reply');
        return value;
      }
      parent.items.push(value);
      value = undefined;
      if (parent.items.length === parent.size) value = finish(open.pop() ?? parent);
    }
  }
}

/** An aggregate's value; undefined for an attribute, which is dropped. */
function finish(aggregate: OpenAggregate): RespValue | undefined {
  if (aggregate.type === 0x7c) return undefined;
  if (aggregate.type !== 0x25) return aggregate.items;
  const entries: [RespValue, RespValue][] = [];
  for (let index = 0; index + 1 < aggregate.items.length; index += 2)
    entries.push([aggregate.items[index] ?? null, aggregate.items[index + 1] ?? null]);
  return new RespMap(entries);
}

function isStreamed(line: Buffer): boolean {
  return line.length === 1 && line[0] === 0x3f;
}

function digits(line: Buffer): string {
  const text = line.toString('latin1');
  if (!/^-?\d+$/.test(text)) throw new ProtocolError('invalid number');
  return text;
}

function length(line: Buffer): number {
  return Number(digits(line));
}

function integer(line: Buffer): number | bigint {
  const text = digits(line);
  const value = Number(text);
  return Number.isSafeInteger(value) ? value : BigInt(text);
}

function double(line: Buffer): number {
  const text = line.toString('latin1');
  if (text === 'inf') return Infinity;
  if (text === '-inf') return -Infinity;
  if (text === 'nan' || text === '-nan') return NaN;
  const value = Number(text);
  if (text === '' || Number.isNaN(value)) throw new ProtocolError('invalid double');
  return value;
}

function boolean(line: Buffer): boolean {
  if (line.length === 1 && line[0] === 0x74) return true;
  if (line.length === 1 && line[0] === 0x66) return false;
  throw new ProtocolError('invalid boolean');
}

function bulk(frame: Buffer, start: number, line: Buffer): { value: Buffer | null; end: number } {
  const size = length(line);
  if (size === -1) return { value: null, end: start };
  const end = start + size;
  if (size < 0 || frame.toString('latin1', end, end + 2) !== CRLF) throw new ProtocolError('invalid bulk string');
  return { value: frame.subarray(start, end), end: end + 2 };
}

/** The chunks of a `$?` string, from `;<length>` lines up to `;0`. */
function streamedString(frame: Buffer, start: number): { value: Buffer; end: number } {
  const chunks: Buffer[] = [];
  let pos = start;
  for (;;) {
    const lineEnd = frame.indexOf(CRLF, pos);
    if (frame[pos] !== 0x3b || lineEnd === -1) throw new ProtocolError('invalid streamed string');
    const line = frame.subarray(pos + 1, lineEnd);
    // `;0` ends the string, without a body.
    if (line.length === 1 && line[0] === 0x30) return { value: Buffer.concat(chunks), end: lineEnd + 2 };
    const chunk = bulk(frame, lineEnd + 2, line);
    if (chunk.value === null) throw new ProtocolError('invalid streamed string');
    chunks.push(chunk.value);
    pos = chunk.end;
  }
}

import * as Byte from './resp-bytes.js';
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
/** Digits that always fit a double exactly (an integer reply of more is checked as text). */
const SAFE_DIGITS = 15;

/**
 * Decodes one whole frame (as the ReplyScanner delimits it). Incomplete or malformed bytes throw a ProtocolError.
 * Lines and lengths are read byte by byte: this runs for every reply to drain-init's own commands, a job's fetch
 * among them.
 */
export function decodeReply(frame: Buffer): RespValue {
  const open: OpenAggregate[] = [];
  let pos = 0;
  for (;;) {
    const type = frame[pos];
    const start = pos + 1;
    const end = type === undefined ? -1 : lineEnd(frame, start);
    if (end === -1) throw new ProtocolError('incomplete reply');
    pos = end + 2;
    let value: RespValue | undefined;
    switch (type) {
      case Byte.PLUS:
        value = frame.subarray(start, end);
        break;
      case Byte.MINUS:
        value = new RespError(frame.toString('utf8', start, end));
        break;
      case Byte.COLON:
        value = integer(frame, start, end);
        break;
      case Byte.COMMA:
        value = double(frame.toString('latin1', start, end));
        break;
      case Byte.PAREN:
        value = BigInt(digits(frame.toString('latin1', start, end)));
        break;
      case Byte.HASH:
        value = boolean(frame, start, end);
        break;
      case Byte.UNDERSCORE:
        value = null;
        break;
      case Byte.DOLLAR:
      case Byte.BANG:
      case Byte.EQUALS: {
        const body =
          type === Byte.DOLLAR && isStreamed(frame, start, end)
            ? streamedString(frame, pos)
            : bulk(frame, pos, start, end);
        pos = body.end;
        value =
          body.value === null || type === Byte.DOLLAR
            ? body.value
            : type === Byte.BANG
              ? new RespError(body.value.toString())
              : body.value.subarray(4);
        break;
      }
      case Byte.STAR:
      case Byte.TILDE:
      case Byte.GREATER:
      case Byte.PERCENT:
      case Byte.PIPE: {
        if (isStreamed(frame, start, end) && type !== Byte.GREATER && type !== Byte.PIPE) {
          open.push({ type, size: STREAMED, items: [] });
          break;
        }
        const count = length(frame, start, end);
        if (count === -1 && type === Byte.STAR) {
          value = null;
          break;
        }
        if (count < 0) throw new ProtocolError('invalid aggregate length');
        const size = type === Byte.PERCENT || type === Byte.PIPE ? 2 * count : count;
        if (size > 0) open.push({ type, size, items: [] });
        else value = finish({ type, size, items: [] });
        break;
      }
      case Byte.DOT: {
        const streamed = open.pop();
        if (end !== start || streamed?.size !== STREAMED) throw new ProtocolError("'.' outside a streamed aggregate");
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

/** Where the line that starts at `from` ends (the index of its CR), or -1 without a CRLF. */
function lineEnd(frame: Buffer, from: number): number {
  for (let pos = from; pos + 1 < frame.length; pos++) {
    if (frame[pos] === Byte.CR && frame[pos + 1] === Byte.LF) return pos;
  }
  return -1;
}

/** An aggregate's value; undefined for an attribute, which is dropped. */
function finish(aggregate: OpenAggregate): RespValue | undefined {
  if (aggregate.type === Byte.PIPE) return undefined;
  if (aggregate.type !== Byte.PERCENT) return aggregate.items;
  const entries: [RespValue, RespValue][] = [];
  for (let index = 0; index + 1 < aggregate.items.length; index += 2)
    entries.push([aggregate.items[index] ?? null, aggregate.items[index + 1] ?? null]);
  return new RespMap(entries);
}

function isStreamed(frame: Buffer, start: number, end: number): boolean {
  return end === start + 1 && frame[start] === Byte.QUESTION;
}

function digits(text: string): string {
  if (!/^-?\d+$/.test(text)) throw new ProtocolError('invalid number');
  return text;
}

/** A length line (`-1` or digits); beyond 2^53 it is inexact, and then too large for any frame anyway. */
function length(frame: Buffer, start: number, end: number): number {
  const negative = frame[start] === Byte.MINUS;
  let pos = negative ? start + 1 : start;
  if (pos === end) throw new ProtocolError('invalid number');
  let value = 0;
  for (; pos < end; pos++) {
    const digit = (frame[pos] ?? 0) - Byte.ZERO;
    if (digit < 0 || digit > 9) throw new ProtocolError('invalid number');
    value = value * 10 + digit;
  }
  return negative ? -value : value;
}

function integer(frame: Buffer, start: number, end: number): number | bigint {
  if (end - start <= SAFE_DIGITS) return length(frame, start, end);
  const text = digits(frame.toString('latin1', start, end));
  const value = Number(text);
  return Number.isSafeInteger(value) ? value : BigInt(text);
}

function double(text: string): number {
  if (text === 'inf') return Infinity;
  if (text === '-inf') return -Infinity;
  if (text === 'nan' || text === '-nan') return NaN;
  const value = Number(text);
  if (text === '' || Number.isNaN(value)) throw new ProtocolError('invalid double');
  return value;
}

function boolean(frame: Buffer, start: number, end: number): boolean {
  if (end === start + 1 && frame[start] === Byte.LOWER_T) return true;
  if (end === start + 1 && frame[start] === Byte.LOWER_F) return false;
  throw new ProtocolError('invalid boolean');
}

/** A bulk string whose length line is frame[lineStart, lineEnd) and whose body starts at `start`. */
function bulk(frame: Buffer, start: number, lineStart: number, lineEnd: number): { value: Buffer | null; end: number } {
  const size = length(frame, lineStart, lineEnd);
  if (size === -1) return { value: null, end: start };
  const end = start + size;
  if (size < 0 || frame[end] !== Byte.CR || frame[end + 1] !== Byte.LF) throw new ProtocolError('invalid bulk string');
  return { value: frame.subarray(start, end), end: end + 2 };
}

/** The chunks of a `$?` string, from `;<length>` lines up to `;0`. */
function streamedString(frame: Buffer, start: number): { value: Buffer; end: number } {
  const chunks: Buffer[] = [];
  let pos = start;
  for (;;) {
    const end = lineEnd(frame, pos);
    if (frame[pos] !== Byte.SEMICOLON || end === -1) throw new ProtocolError('invalid streamed string');
    // `;0` ends the string, without a body.
    if (end === pos + 2 && frame[pos + 1] === Byte.ZERO) return { value: Buffer.concat(chunks), end: end + 2 };
    const chunk = bulk(frame, end + 2, pos + 1, end);
    if (chunk.value === null) throw new ProtocolError('invalid streamed string');
    chunks.push(chunk.value);
    pos = chunk.end;
  }
}

import { CR, DOLLAR, LF, STAR, ZERO } from './resp-bytes.js';

/** The protocol of a connection: RESP2 until a `HELLO 3` succeeds. */
export type RespProtocol = 2 | 3;

type BulkItem = string | Buffer;

/**
 * An array of bulk strings: a command as redis-server reads it, or an array reply such as BRPOP's
 * `[key, value]`. Strings are sent as UTF-8, written in place. One allocation.
 */
export function encodeBulkArray(items: readonly BulkItem[]): Buffer {
  return encodeBulkArrayHead(items.length, items);
}

/**
 * The start of an array of `count` bulk strings: its header and its first items, the rest to follow with
 * appendBulks. A command sent often with only its last arguments changing is encoded once this way.
 */
export function encodeBulkArrayHead(count: number, items: readonly BulkItem[]): Buffer {
  const out = Buffer.allocUnsafe(headerSize(count) + bulksSize(items));
  writeBulks(out, writeHeader(out, 0, STAR, count), items);
  return out;
}

/** `head` followed by `items` as bulk strings, in one new buffer. */
export function appendBulks(head: Buffer, items: readonly BulkItem[]): Buffer {
  const out = Buffer.allocUnsafe(head.length + bulksSize(items));
  writeBulks(out, head.copy(out, 0), items);
  return out;
}

function bulksSize(items: readonly BulkItem[]): number {
  let size = 0;
  for (const item of items) {
    const length = typeof item === 'string' ? Buffer.byteLength(item) : item.length;
    size += headerSize(length) + length + 2;
  }
  return size;
}

function writeBulks(out: Buffer, start: number, items: readonly BulkItem[]): void {
  let pos = start;
  for (const item of items) {
    pos = writeHeader(out, pos, DOLLAR, typeof item === 'string' ? Buffer.byteLength(item) : item.length);
    pos += typeof item === 'string' ? out.write(item, pos) : item.copy(out, pos);
    out[pos++] = CR;
    out[pos++] = LF;
  }
}

/** `$12\r\n` or `*3\r\n`: the type byte, the count in decimal, CRLF. */
function headerSize(count: number): number {
  return 1 + digitCount(count) + 2;
}

function writeHeader(out: Buffer, start: number, type: number, count: number): number {
  out[start] = type;
  const end = start + 1 + digitCount(count);
  for (let pos = end - 1, rest = count; pos > start; pos--, rest = Math.floor(rest / 10)) out[pos] = ZERO + (rest % 10);
  out[end] = CR;
  out[end + 1] = LF;
  return end + 2;
}

function digitCount(value: number): number {
  let digits = 1;
  for (let rest = value; rest >= 10; rest = Math.floor(rest / 10)) digits++;
  return digits;
}

const NULL_ARRAY_RESP2 = Buffer.from('*-1\r\n');
const NULL_RESP3 = Buffer.from('_\r\n');

/** The reply of a command whose answer is "no array", as BRPOP's after its timeout: RESP2 `*-1`, RESP3 `_`. */
export function encodeNullArray(protocol: RespProtocol): Buffer {
  return protocol === 3 ? NULL_RESP3 : NULL_ARRAY_RESP2;
}

/** An error reply; line breaks in the message become spaces, as redis-server does with Lua errors. */
export function encodeError(message: string): Buffer {
  return Buffer.from(`-${message.replace(/[\r\n]/g, ' ')}\r\n`);
}

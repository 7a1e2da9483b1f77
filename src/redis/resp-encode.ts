/** The protocol of a connection: RESP2 until a `HELLO 3` succeeds. */
export type RespProtocol = 2 | 3;

/**
 * An array of bulk strings: a command as redis-server reads it, or an array reply such as BRPOP's
 * `[key, value]`. Strings are sent as UTF-8, written in place. One allocation.
 */
export function encodeBulkArray(items: readonly (string | Buffer)[]): Buffer {
  const header = `*${items.length}\r\n`;
  let size = header.length;
  for (const item of items) {
    const length = typeof item === 'string' ? Buffer.byteLength(item) : item.length;
    size += 1 + digitCount(length) + 2 + length + 2;
  }
  const out = Buffer.allocUnsafe(size);
  let pos = out.write(header, 0, 'latin1');
  for (const item of items) {
    const length = typeof item === 'string' ? Buffer.byteLength(item) : item.length;
    pos += out.write(`$${length}\r\n`, pos, 'latin1');
    pos += typeof item === 'string' ? out.write(item, pos) : item.copy(out, pos);
    out[pos++] = 0x0d;
    out[pos++] = 0x0a;
  }
  return out;
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

import { CR, LF } from './resp-bytes.js';

/**
 * Bytes that break the Redis protocol. The message is one line and never quotes the input: at most one
 * offending byte, printable ASCII as itself and anything else as hex.
 */
export class ProtocolError extends Error {
  override readonly name = 'ProtocolError';

  /** `kind` is the message without the offending byte, for grouping warnings. */
  constructor(
    readonly kind: string,
    detail = '',
  ) {
    super(`Protocol error: ${kind}${detail}`);
  }
}

/** `'$'` for a printable ASCII byte, `byte 0x0d` for anything else. */
export function describeByte(byte: number): string {
  return byte > 0x20 && byte < 0x7f ? `'${String.fromCharCode(byte)}'` : `byte 0x${byte.toString(16).padStart(2, '0')}`;
}

const START = 0;
const AFTER_MINUS = 1;
const DIGITS = 2;
const STREAMED = 3;
const AFTER_CR = 4;
const INVALID = 5;
/** Past 15 digits a length could exceed Number.MAX_SAFE_INTEGER; no valid length or count has that many. */
const MAX_DIGITS = 15;

/**
 * Reads the `<integer>\r\n` of a RESP header line byte by byte, across chunk boundaries (header lines are a few
 * bytes long, so a loop beats indexOf and parseInt). Accepts what redis-server's string2ll accepts: an optional
 * `-`, then `0` or digits without a leading zero; `-0` is not a number. With `allowStreamed`, a lone `?` too.
 */
export class IntegerLine {
  value = 0;
  negative = false;
  streamed = false;
  #state = START;
  #digits = 0;
  #leadingZero = false;

  reset(): void {
    this.value = 0;
    this.negative = false;
    this.streamed = false;
    this.#state = START;
    this.#digits = 0;
    this.#leadingZero = false;
  }

  /** The offset after the line's `\n`; -1 when the chunk ends first; -2 when the line is not an integer. */
  read(chunk: Buffer, start: number, allowStreamed: boolean): number {
    for (let pos = start; pos < chunk.length; pos++) {
      const byte = chunk[pos] ?? 0;
      switch (this.#state) {
        case START:
          if (byte === 0x2d) {
            this.negative = true;
            this.#state = AFTER_MINUS;
          } else if (byte === 0x3f && allowStreamed) {
            this.streamed = true;
            this.#state = STREAMED;
          } else this.#digit(byte);
          break;
        case AFTER_MINUS:
          if (byte === 0x30) this.#state = INVALID;
          else this.#digit(byte);
          break;
        case DIGITS:
          if (byte === CR) this.#state = AFTER_CR;
          else if (this.#leadingZero) this.#state = INVALID;
          else this.#digit(byte);
          break;
        case STREAMED:
          this.#state = byte === CR ? AFTER_CR : INVALID;
          break;
        case AFTER_CR:
          if (byte === LF) {
            if (this.negative) this.value = -this.value;
            return pos + 1;
          }
          this.#state = INVALID;
          break;
      }
      if (this.#state === INVALID) return -2;
    }
    return -1;
  }

  #digit(byte: number): void {
    const digit = byte - 0x30;
    if (digit < 0 || digit > 9 || ++this.#digits > MAX_DIGITS) {
      this.#state = INVALID;
      return;
    }
    if (this.#digits === 1 && digit === 0) this.#leadingZero = true;
    this.value = this.value * 10 + digit;
    this.#state = DIGITS;
  }
}

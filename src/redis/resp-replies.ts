import {
  BANG,
  COLON,
  COMMA,
  CR,
  DOLLAR,
  DOT,
  EQUALS,
  GREATER,
  HASH,
  LF,
  MINUS,
  PAREN,
  PERCENT,
  PIPE,
  PLUS,
  SEMICOLON,
  STAR,
  TILDE,
  UNDERSCORE,
} from './resp-bytes.js';
import { describeByte, IntegerLine, ProtocolError } from './resp-error.js';

/** What a top-level frame is: a reply to a command (an error reply or another one), or an out-of-band push. */
export type FrameKind = 'reply' | 'error' | 'push';

/**
 * Deepest nesting of aggregates accepted. redis-server 7.0 stops a Lua script's reply at about 8,000 levels
 * ("reached lua stack limit"); this bounds the scanner's memory against garbage.
 */
export const MAX_REPLY_DEPTH = 16_384;

const TYPE = 0;
const LINE = 1;
const HEADER = 2;
const BODY = 3;
const BODY_CR = 4;
const BODY_LF = 5;

/** What follows a body's CRLF. */
const AFTER_VALUE = 0;
const AFTER_STRING_CHUNK = 1;
const AFTER_AGGREGATE_END = 2;

/** Elements left of an aggregate of unknown length (`*?`), which ends with `.`. */
const STREAMED = -1;

/**
 * Finds the top-level frames of a server→client RESP2/RESP3 byte stream without buffering it: bulk bodies and
 * simple lines are skipped, only header lines are read. An attribute (`|`) belongs to the frame that follows it;
 * a push (`>`) is its own frame. Streamed strings (`$?` with `;` chunks) and aggregates (`*?`, `%?`, `~?` ending
 * with `.`) are followed. Garbage throws a ProtocolError; the scanner is then unusable.
 */
export class ReplyScanner {
  readonly #line = new IntegerLine();
  #phase = TYPE;
  #lineType = 0;
  #after = AFTER_VALUE;
  #bodyLeft = 0;
  /** Elements left per open aggregate, innermost last. */
  readonly #left: number[] = [];
  readonly #attribute: boolean[] = [];
  #streamedString = false;
  #crSeen = false;
  #inFrame = false;
  #kind: FrameKind = 'reply';

  /** Between frames: every byte fed so far belongs to a reported frame. */
  get atBoundary(): boolean {
    return !this.#inFrame;
  }

  /**
   * Scans a chunk, calling onFrame with the offset just after each top-level frame that ends in it. Returning
   * true from onFrame stops the scan there: feed() returns that offset. Otherwise returns the chunk's length.
   */
  feed(chunk: Buffer, onFrame: (end: number, kind: FrameKind) => boolean): number {
    const end = chunk.length;
    let pos = 0;
    while (pos < end) {
      let valueEnded = false;
      switch (this.#phase) {
        case TYPE:
          this.#type(chunk[pos] ?? 0);
          pos++;
          break;
        case LINE: {
          const newline = chunk.indexOf(LF, pos);
          if (newline === -1) {
            this.#crSeen = chunk[end - 1] === CR;
            pos = end;
            break;
          }
          if (!(newline > pos ? chunk[newline - 1] === CR : this.#crSeen))
            throw new ProtocolError('expected CRLF at the end of a line');
          pos = newline + 1;
          valueEnded = true;
          break;
        }
        case HEADER: {
          const next = this.#line.read(chunk, pos, this.#allowsStreamed());
          if (next === -2) throw new ProtocolError('invalid length in a header of type ', describeByte(this.#lineType));
          if (next === -1) {
            pos = end;
            break;
          }
          pos = next;
          valueEnded = this.#header();
          break;
        }
        case BODY: {
          const take = Math.min(this.#bodyLeft, end - pos);
          pos += take;
          this.#bodyLeft -= take;
          if (this.#bodyLeft === 0) this.#phase = BODY_CR;
          break;
        }
        case BODY_CR:
          if (chunk[pos] !== CR) throw new ProtocolError('expected CRLF after a bulk string');
          this.#phase = BODY_LF;
          pos++;
          break;
        case BODY_LF:
          if (chunk[pos] !== LF) throw new ProtocolError('expected CRLF after a bulk string');
          pos++;
          if (this.#after === AFTER_STRING_CHUNK) {
            this.#phase = TYPE;
          } else {
            if (this.#after === AFTER_AGGREGATE_END) this.#pop();
            valueEnded = true;
          }
          break;
      }
      if (valueEnded) {
        this.#phase = TYPE;
        if (this.#valueEnded()) {
          this.#inFrame = false;
          if (onFrame(pos, this.#kind)) return pos;
        }
      }
    }
    return end;
  }

  #type(type: number): void {
    if (this.#streamedString) {
      if (type !== SEMICOLON) throw new ProtocolError("expected ';' in a streamed string, got ", describeByte(type));
      this.#startHeader(type);
      return;
    }
    if (this.#left.length === 0) {
      // A type byte at the top: the frame's first, or the one after a top-level attribute, says what it is.
      this.#inFrame = true;
      this.#kind = type === GREATER ? 'push' : type === MINUS || type === BANG ? 'error' : 'reply';
    }
    switch (type) {
      case PLUS:
      case MINUS:
      case COLON:
      case COMMA:
      case PAREN:
      case HASH:
      case UNDERSCORE:
        this.#crSeen = false;
        this.#phase = LINE;
        return;
      case DOLLAR:
      case BANG:
      case EQUALS:
      case STAR:
      case PERCENT:
      case TILDE:
      case PIPE:
      case GREATER:
        this.#startHeader(type);
        return;
      case DOT:
        if (this.#left.at(-1) !== STREAMED) throw new ProtocolError("'.' outside a streamed aggregate");
        this.#after = AFTER_AGGREGATE_END;
        this.#phase = BODY_CR;
        return;
      default:
        throw new ProtocolError('unknown reply type ', describeByte(type));
    }
  }

  #startHeader(type: number): void {
    this.#lineType = type;
    this.#line.reset();
    this.#phase = HEADER;
  }

  #allowsStreamed(): boolean {
    const type = this.#lineType;
    return type === DOLLAR || type === STAR || type === PERCENT || type === TILDE;
  }

  /** A header line was read. True when it was a whole value (a null, an empty aggregate, the end of a string). */
  #header(): boolean {
    const { value, streamed } = this.#line;
    const type = this.#lineType;
    if (streamed) {
      if (type === DOLLAR) this.#streamedString = true;
      else this.#push(STREAMED, false);
      this.#phase = TYPE;
      return false;
    }
    if (value < 0) {
      // RESP2's null bulk string and null array.
      if (value === -1 && (type === DOLLAR || type === STAR)) return true;
      throw new ProtocolError('invalid length in a header of type ', describeByte(type));
    }
    switch (type) {
      case SEMICOLON:
        if (value === 0) {
          this.#streamedString = false;
          return true;
        }
        return this.#body(value, AFTER_STRING_CHUNK);
      case DOLLAR:
      case BANG:
      case EQUALS:
        return this.#body(value, AFTER_VALUE);
      default: {
        const elements = type === PERCENT || type === PIPE ? 2 * value : value;
        if (elements > 0) this.#push(elements, type === PIPE);
        this.#phase = TYPE;
        // An empty attribute is no value: the attributed value still follows.
        return elements === 0 && type !== PIPE;
      }
    }
  }

  #body(length: number, after: number): false {
    this.#bodyLeft = length;
    this.#after = after;
    this.#phase = BODY;
    return false;
  }

  #push(elements: number, attribute: boolean): void {
    if (this.#left.length >= MAX_REPLY_DEPTH) throw new ProtocolError('reply nested too deep');
    this.#left.push(elements);
    this.#attribute.push(attribute);
  }

  #pop(): boolean {
    this.#left.pop();
    return this.#attribute.pop() ?? false;
  }

  /** A value ended: counts it in its aggregates. True when it was the whole top-level frame. */
  #valueEnded(): boolean {
    for (;;) {
      const depth = this.#left.length;
      if (depth === 0) return true;
      const left = this.#left[depth - 1] ?? 0;
      if (left === STREAMED) return false;
      if (left > 1) {
        this.#left[depth - 1] = left - 1;
        return false;
      }
      // The aggregate is complete: it is a value of its parent, unless it was an attribute.
      if (this.#pop()) return false;
    }
  }
}

import { CR, DOLLAR, LF, STAR } from './resp-bytes.js';
import { describeByte, IntegerLine, ProtocolError } from './resp-error.js';

/** What a client may send, as redis-server 7.0 checks it (src/networking.c, processMultibulkBuffer/processInlineBuffer). */
export interface CommandLimits {
  /** Longest bulk argument: redis-server's proto-max-bulk-len, 512 MiB unless configured. */
  readonly maxBulkBytes: number;
  /** Most elements of one multibulk: INT_MAX since redis 7.0 (1,048,576 up to 6.2). */
  readonly maxArguments: number;
  /** Longest inline command line: PROTO_INLINE_MAX_SIZE, 64 KiB. */
  readonly maxInlineBytes: number;
}

export const REDIS_COMMAND_LIMITS: CommandLimits = {
  maxBulkBytes: 512 * 1024 * 1024,
  maxArguments: 2 ** 31 - 1,
  maxInlineBytes: 64 * 1024,
};

/** No command name is this long: a longer one is reported as '' (an unknown command) and streamed through. */
export const MAX_NAME_BYTES = 256;
/** A capture policy that asks to see the first argument sees it only up to this size. */
export const MAX_FIRST_ARGUMENT_BYTES = 64 * 1024;

/** A complete command of the client's byte stream. */
export interface ScannedCommand {
  /** The command name upper-cased (ASCII letters only, as redis-server compares names). */
  readonly name: string;
  /** Arguments after the name. */
  readonly argCount: number;
  /** The arguments after the name, when the capture policy captured this command. */
  readonly args: readonly Buffer[] | undefined;
  /**
   * A captured command's bytes exactly as received, which the scanner has not forwarded: the sink forwards them
   * or consumes them. Undefined for an uncaptured command, whose bytes go through forward().
   */
  readonly raw: readonly Buffer[] | undefined;
  /** The first argument, when the capture policy asked to see it: also when the command was not captured after all. */
  readonly firstArgument: Buffer | undefined;
}

/**
 * How many bytes of a command (as sent, headers included) to hold and capture; 0 captures nothing. Or a
 * question for the command's first argument (up to MAX_FIRST_ARGUMENT_BYTES), answered with such a byte count.
 * A command without arguments asked that question is captured.
 */
export type CaptureDecision = number | { readonly firstArgument: (first: Buffer) => number };
export type CapturePolicy = (name: string, argCount: number) => CaptureDecision;

export interface CommandSink {
  /** Bytes to pass on unchanged, in order: slices of the input (never copies). */
  forward(bytes: Buffer): void;
  /**
   * A complete command, in order. All bytes before it have been passed to forward() when it is captured; an
   * uncaptured command's own bytes are forwarded before feed() returns. Returning true stops the scan right
   * after this command: feed() returns the offset after it and the caller feeds the rest later.
   */
  command(command: ScannedCommand): boolean;
}

const START = 0;
const COUNT = 1;
const HEADER_TYPE = 2;
const HEADER = 3;
const BODY = 4;
const BODY_CR = 5;
const BODY_LF = 6;
const INLINE = 7;

/** Holding the command's bytes until the name is known. */
const DECIDING = 0;
/** Holding them until the first argument is known. */
const PEEKING = 1;
/** Holding them to hand them over whole. */
const CAPTURING = 2;
/** Passing them through as they come. */
const STREAMING = 3;

/**
 * Splits the client→server byte stream of one connection into commands: RESP multibulk and inline commands, as
 * redis-server parses them. Bulk bodies stream through without being buffered, except those of captured
 * commands. Garbage or a broken limit throws a ProtocolError; the scanner is then unusable.
 */
export class CommandScanner {
  readonly #capture: CapturePolicy;
  readonly #limits: CommandLimits;
  readonly #header = new IntegerLine();
  #phase = START;
  #mode = DECIDING;
  #argsTotal = 0;
  #argIndex = 0;
  #bodyLeft = 0;
  #budget = 0;
  #firstArgument: ((first: Buffer) => number) | undefined;
  #name = '';
  #args: Buffer[] = [];
  #peeked: Buffer | undefined;
  /** Pieces of the argument body being read, when it is kept. */
  readonly #parts: Buffer[] = [];
  #collecting = false;
  /** Bytes of the current command received in earlier chunks and held back. */
  #held: Buffer[] = [];
  #heldBytes = 0;
  #inlineBytes = 0;
  // Per feed() call: where the unforwarded bytes start, and where the current command starts in this chunk.
  #forwardFrom = 0;
  #commandStart = 0;

  constructor(capture: CapturePolicy, limits: CommandLimits = REDIS_COMMAND_LIMITS) {
    this.#capture = capture;
    this.#limits = limits;
  }

  /** Between commands: everything fed so far has been reported. */
  get atBoundary(): boolean {
    return this.#phase === START;
  }

  /** Scans a chunk; returns how many of its bytes were consumed (all of them unless the sink stopped the scan). */
  feed(chunk: Buffer, sink: CommandSink): number {
    const end = chunk.length;
    let pos = 0;
    this.#forwardFrom = 0;
    this.#commandStart = 0;
    while (pos < end) {
      switch (this.#phase) {
        case START:
          this.#commandStart = pos;
          this.#mode = DECIDING;
          if (chunk[pos] === STAR) {
            this.#header.reset();
            this.#phase = COUNT;
            pos++;
          } else {
            this.#inlineBytes = 0;
            this.#phase = INLINE;
          }
          break;
        case COUNT: {
          const next = this.#header.read(chunk, pos, false);
          if (next === -2) throw new ProtocolError('invalid multibulk length');
          if (next === -1) {
            pos = end;
            break;
          }
          pos = next;
          const count = this.#header.value;
          if (count > this.#limits.maxArguments) throw new ProtocolError('invalid multibulk length');
          if (count <= 0) {
            // redis-server runs nothing and replies nothing; the bytes still pass through.
            this.#release(sink);
            this.#phase = START;
            break;
          }
          this.#argsTotal = count;
          this.#argIndex = 0;
          this.#phase = HEADER_TYPE;
          break;
        }
        case HEADER_TYPE: {
          const byte = chunk[pos] ?? 0;
          if (byte !== DOLLAR) throw new ProtocolError("expected '$', got ", describeByte(byte));
          this.#header.reset();
          this.#phase = HEADER;
          pos++;
          break;
        }
        case HEADER: {
          const next = this.#header.read(chunk, pos, false);
          if (next === -1) {
            pos = end;
            break;
          }
          const length = this.#header.value;
          if (next === -2 || length < 0 || length > this.#limits.maxBulkBytes)
            throw new ProtocolError('invalid bulk length');
          pos = next;
          this.#beginArgument(length, pos, sink);
          this.#bodyLeft = length;
          this.#phase = BODY;
          break;
        }
        case BODY: {
          const take = Math.min(this.#bodyLeft, end - pos);
          if (this.#collecting && take > 0) this.#parts.push(chunk.subarray(pos, pos + take));
          pos += take;
          this.#bodyLeft -= take;
          if (this.#bodyLeft === 0) this.#phase = BODY_CR;
          break;
        }
        case BODY_CR:
          if (chunk[pos] !== CR) throw new ProtocolError('expected CRLF after a bulk argument');
          this.#phase = BODY_LF;
          pos++;
          break;
        case BODY_LF:
          if (chunk[pos] !== LF) throw new ProtocolError('expected CRLF after a bulk argument');
          pos++;
          this.#endArgument(pos, sink);
          if (++this.#argIndex < this.#argsTotal) {
            this.#phase = HEADER_TYPE;
          } else if (this.#complete(chunk, pos, sink)) {
            return pos;
          }
          break;
        case INLINE: {
          const newline = chunk.indexOf(LF, pos);
          if (newline === -1) {
            this.#inlineBytes += end - pos;
            if (this.#inlineBytes > this.#limits.maxInlineBytes + 1) throw new ProtocolError('too big inline request');
            pos = end;
            break;
          }
          pos = newline + 1;
          if (this.#inline(chunk, newline, pos, sink)) return pos;
          break;
        }
      }
    }
    if (this.#phase !== START && this.#mode !== STREAMING) {
      this.#flush(chunk, this.#commandStart, sink);
      this.#hold(chunk.subarray(this.#commandStart));
    } else {
      this.#flush(chunk, end, sink);
    }
    return end;
  }

  /** An argument's length is known: decides whether its body is kept, and whether the command is still held. */
  #beginArgument(length: number, pos: number, sink: CommandSink): void {
    if (this.#mode === DECIDING) {
      // The name: kept unless it is too long to be a command's.
      if (length > MAX_NAME_BYTES) {
        this.#name = '';
        this.#stream(sink);
      }
    } else if (this.#mode === PEEKING) {
      if (length > MAX_FIRST_ARGUMENT_BYTES) this.#stream(sink);
    } else if (this.#mode === CAPTURING && this.#rawBytes(pos) + length + 2 > this.#budget) {
      this.#stream(sink);
    }
    this.#collecting = this.#mode !== STREAMING;
  }

  #endArgument(pos: number, sink: CommandSink): void {
    if (!this.#collecting) return;
    const value = this.#parts.length === 1 ? (this.#parts[0] as Buffer) : Buffer.concat(this.#parts);
    this.#parts.length = 0;
    if (this.#argIndex === 0) {
      this.#name = commandName(value);
      this.#decide(this.#capture(this.#name, this.#argsTotal - 1), this.#argsTotal > 1, pos, sink);
    } else if (this.#mode === PEEKING) {
      this.#peeked = value;
      this.#budget = this.#firstArgument?.(value) ?? 0;
      this.#firstArgument = undefined;
      if (this.#budget > 0 && this.#rawBytes(pos) <= this.#budget) {
        this.#mode = CAPTURING;
        this.#args.push(value);
      } else this.#stream(sink);
    } else {
      this.#args.push(value);
    }
  }

  #decide(decision: CaptureDecision, hasArguments: boolean, pos: number, sink: CommandSink): void {
    this.#args = [];
    if (typeof decision === 'number') {
      this.#budget = decision;
      if (decision > 0 && this.#rawBytes(pos) <= decision) this.#mode = CAPTURING;
      else this.#stream(sink);
    } else if (hasArguments) {
      this.#firstArgument = decision.firstArgument;
      this.#mode = PEEKING;
    } else {
      this.#budget = this.#rawBytes(pos);
      this.#mode = CAPTURING;
    }
  }

  /** The command is not captured after all: what was held of it goes out now, the rest as it comes. */
  #stream(sink: CommandSink): void {
    this.#mode = STREAMING;
    this.#firstArgument = undefined;
    this.#args = [];
    this.#release(sink);
  }

  /** The last argument ended at pos: reports the command. True when the sink stops the scan. */
  #complete(chunk: Buffer, pos: number, sink: CommandSink): boolean {
    this.#phase = START;
    const captured = this.#mode === CAPTURING;
    if (captured) this.#flush(chunk, this.#commandStart, sink);
    const command: ScannedCommand = {
      name: this.#name,
      argCount: this.#argsTotal - 1,
      args: captured ? this.#args : undefined,
      raw: captured ? this.#takeHeld(chunk.subarray(this.#commandStart, pos)) : undefined,
      firstArgument: this.#peeked,
    };
    this.#args = [];
    this.#peeked = undefined;
    if (captured) this.#forwardFrom = pos;
    if (!sink.command(command)) return false;
    this.#flush(chunk, pos, sink);
    return true;
  }

  /** A whole inline line ends at `newline`; `pos` is after it. True when the sink stops the scan. */
  #inline(chunk: Buffer, newline: number, pos: number, sink: CommandSink): boolean {
    let line = this.#lineOf(chunk.subarray(this.#commandStart, newline));
    if (line.at(-1) === CR) line = line.subarray(0, -1);
    if (line.length > this.#limits.maxInlineBytes) throw new ProtocolError('too big inline request');
    if (line.includes(0)) throw new ProtocolError('NUL byte in inline request');
    const tokens = splitInlineArguments(line);
    if (tokens === undefined) throw new ProtocolError('unbalanced quotes in request');
    const [first, ...args] = tokens;
    if (first === undefined) {
      // An empty line: redis-server runs nothing and replies nothing; the bytes still pass through.
      this.#release(sink);
      this.#phase = START;
      return false;
    }
    this.#name = commandName(first);
    this.#argsTotal = tokens.length;
    const decision = this.#capture(this.#name, args.length);
    const budget =
      typeof decision === 'number'
        ? decision
        : args[0] === undefined
          ? Infinity
          : args[0].length > MAX_FIRST_ARGUMENT_BYTES
            ? 0
            : decision.firstArgument(args[0]);
    if (budget > 0 && this.#rawBytes(pos) <= budget) {
      this.#mode = CAPTURING;
      this.#args = args;
    } else {
      this.#stream(sink);
    }
    return this.#complete(chunk, pos, sink);
  }

  /** Bytes of the current command so far, held ones included. */
  #rawBytes(pos: number): number {
    return this.#heldBytes + pos - this.#commandStart;
  }

  #flush(chunk: Buffer, upTo: number, sink: CommandSink): void {
    if (upTo > this.#forwardFrom) sink.forward(chunk.subarray(this.#forwardFrom, upTo));
    this.#forwardFrom = upTo;
  }

  #hold(piece: Buffer): void {
    if (piece.length === 0) return;
    this.#held.push(piece);
    this.#heldBytes += piece.length;
  }

  /** Forwards the held bytes: they precede everything left in the current chunk. */
  #release(sink: CommandSink): void {
    for (const piece of this.#held) sink.forward(piece);
    this.#held = [];
    this.#heldBytes = 0;
  }

  #takeHeld(last: Buffer): Buffer[] {
    const pieces = last.length === 0 ? this.#held : [...this.#held, last];
    this.#held = [];
    this.#heldBytes = 0;
    return pieces;
  }

  /** The inline line, copied into one buffer only when it spans chunks; the held pieces stay held. */
  #lineOf(last: Buffer): Buffer {
    return this.#held.length === 0 ? last : Buffer.concat([...this.#held, last]);
  }
}

/** ASCII letters upper-cased, as redis-server's case-insensitive lookup sees a name; other bytes unchanged. */
function commandName(bytes: Buffer): string {
  const text = bytes.toString('latin1');
  return /[^\x00-\x7f]/.test(text) ? text.replace(/[a-z]+/g, (letters) => letters.toUpperCase()) : text.toUpperCase();
}

const BACKSLASH = 0x5c;
const DOUBLE_QUOTE = 0x22;
const SINGLE_QUOTE = 0x27;

/** C's isspace in the C locale, as sdssplitargs skips blanks between arguments. */
function isSpace(byte: number | undefined): boolean {
  return byte === 0x20 || (byte !== undefined && byte >= 0x09 && byte <= 0x0d);
}

function hexValue(byte: number | undefined): number {
  if (byte === undefined) return -1;
  if (byte >= 0x30 && byte <= 0x39) return byte - 0x30;
  const lower = byte | 0x20;
  return lower >= 0x61 && lower <= 0x66 ? lower - 0x61 + 10 : -1;
}

const ESCAPES: Readonly<Record<number, number>> = { 0x6e: 0x0a, 0x72: 0x0d, 0x74: 0x09, 0x62: 0x08, 0x61: 0x07 };

/**
 * Splits an inline command line into arguments exactly as redis-server's sdssplitargs does: blanks between
 * arguments, "double quotes" with \xHH and \n \r \t \b \a escapes, 'single quotes' with \' only, a closing quote
 * followed by a blank or the end. Undefined for unbalanced quotes. The line holds no NUL byte.
 */
export function splitInlineArguments(line: Buffer): Buffer[] | undefined {
  const tokens: Buffer[] = [];
  const length = line.length;
  let pos = 0;
  for (;;) {
    while (pos < length && isSpace(line[pos])) pos++;
    if (pos >= length) return tokens;
    const start = pos;
    // Bytes of a token with quotes in it; a token without quotes is a slice of the line.
    let bytes: number[] | undefined;
    let quote = 0;
    let tokenEnd = -1;
    while (tokenEnd === -1) {
      const byte = line[pos];
      if (quote === DOUBLE_QUOTE) {
        const high = hexValue(line[pos + 2]);
        const low = hexValue(line[pos + 3]);
        if (byte === BACKSLASH && line[pos + 1] === 0x78 && high >= 0 && low >= 0) {
          bytes?.push(high * 16 + low);
          pos += 3;
        } else if (byte === BACKSLASH && pos + 1 < length) {
          pos++;
          const escaped = line[pos] ?? 0;
          bytes?.push(ESCAPES[escaped] ?? escaped);
        } else if (byte === DOUBLE_QUOTE) {
          if (pos + 1 < length && !isSpace(line[pos + 1])) return undefined;
          tokenEnd = pos;
        } else if (byte === undefined) {
          return undefined;
        } else {
          bytes?.push(byte);
        }
      } else if (quote === SINGLE_QUOTE) {
        if (byte === BACKSLASH && line[pos + 1] === SINGLE_QUOTE) {
          pos++;
          bytes?.push(SINGLE_QUOTE);
        } else if (byte === SINGLE_QUOTE) {
          if (pos + 1 < length && !isSpace(line[pos + 1])) return undefined;
          tokenEnd = pos;
        } else if (byte === undefined) {
          return undefined;
        } else {
          bytes?.push(byte);
        }
      } else if (byte === undefined || byte === 0x20 || byte === 0x0a || byte === 0x0d || byte === 0x09) {
        tokenEnd = pos;
      } else if (byte === DOUBLE_QUOTE || byte === SINGLE_QUOTE) {
        bytes ??= [...line.subarray(start, pos)];
        quote = byte;
      } else {
        bytes?.push(byte);
      }
      if (pos < length) pos++;
    }
    tokens.push(bytes === undefined ? line.subarray(start, tokenEnd) : Buffer.from(bytes));
  }
}

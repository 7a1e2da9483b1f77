import type { Socket } from 'node:net';
import type { ThrottledWarnings } from '../log/throttle.js';
import { CommandScanner, type CapturePolicy, type CommandSink, type ScannedCommand } from './resp-commands.js';
import { encodeBulkArray, encodeError, type RespProtocol } from './resp-encode.js';
import { ProtocolError } from './resp-error.js';
import { ReplyScanner, type FrameKind } from './resp-replies.js';
import { decodeReply, RespError, type RespValue } from './resp-values.js';
import { Fifo } from './fifo.js';
import {
  ConnectionClosedError,
  type ClosedBy,
  type CommandSwap,
  type ConnectionInfo,
  type RelayedCommand,
  type RelayHooks,
  type ReplyOutcome,
  type TakeoverHandler,
  type TakeoverSession,
} from './relay-hooks.js';

/** A worker's commands held back during a takeover, at most, before the relay stops reading its socket. */
export const MAX_HELD_BYTES = 1024 * 1024;
/**
 * Replies owed by Redis at most before the relay stops reading the worker's commands (one pointer each): a worker
 * that pipelines without reading its replies is held back here, not in the relay's memory.
 */
export const MAX_OWED_REPLIES = 100_000;
/** The largest reply to a hook's own command; a bigger one closes the connection. */
export const MAX_HOOK_REPLY_BYTES = 64 * 1024 * 1024;
/** The relay reads HELLO and CLIENT itself, up to this size; a bigger one turns the connection to pass-through. */
const TRACKED_COMMAND_BYTES = 64 * 1024;
const TRACKED_COMMANDS = new Set(['HELLO', 'CLIENT']);
/** After these, replies no longer answer commands one to one (subscriptions, MONITOR, replication). */
const UNMATCHED_COMMANDS = new Set([
  'SUBSCRIBE',
  'PSUBSCRIBE',
  'SSUBSCRIBE',
  'UNSUBSCRIBE',
  'PUNSUBSCRIBE',
  'SUNSUBSCRIBE',
  'MONITOR',
  'SYNC',
  'PSYNC',
  'REPLCONF',
]);

export interface RelayCounters {
  connectionsOpen: number;
  connectionsTotal: number;
  connectionsRefused: number;
  commandsRelayed: number;
  commandsTakenOver: number;
  protocolErrors: number;
  bytesFromWorkers: number;
  bytesToWorkers: number;
}

export interface LinkContext {
  readonly hooks: RelayHooks;
  readonly counters: RelayCounters;
  readonly warnings: ThrottledWarnings;
  /** The upstream Redis as logs may show it. */
  readonly redis: string;
  readonly closed: (link: Link) => void;
}

/** Replies are matched to commands; takeovers are possible. */
const MATCHING = 0;
/** A command broke the one-to-one match: replies to the commands before it are still matched. */
const DRAINING = 1;
/** Bytes pass through both ways, for good. */
const PASSTHROUGH = 2;

const UPSTREAM_FULL = 1;
const HOLDING = 2;
const OWING = 4;

/** A reply Redis owes: the worker's (with what it changes) or a hook's. */
type Expected =
  | { readonly to: 'worker'; readonly onReply: ((kind: FrameKind) => void) | undefined }
  | { readonly to: 'hook'; readonly resolve: (value: RespValue) => void; readonly reject: (error: Error) => void };

const WORKER_REPLY: Expected = { to: 'worker', onReply: undefined };

/** A taken-over command's reply: written once it is given and the worker's replies before it are written. */
class PendingReply {
  reply: Buffer | ((protocol: RespProtocol) => Buffer) | undefined;
  written = false;
  /** Told where the reply ended up, for a swap answered with bytes (no promise on that path). */
  onSettled: ((outcome: ReplyOutcome) => void) | undefined;
  #outcome: Promise<ReplyOutcome> | undefined;
  #resolve: ((outcome: ReplyOutcome) => void) | undefined;
  #settled: ReplyOutcome | undefined;
  #controller: AbortController | undefined;
  #abortedBy: ConnectionClosedError | undefined;

  constructor(
    /** How many worker replies go before it. */
    readonly after: number,
  ) {}

  /** Made when first asked for, as the signal is. */
  get outcome(): Promise<ReplyOutcome> {
    this.#outcome ??=
      this.#settled === undefined
        ? new Promise((resolve) => (this.#resolve = resolve))
        : Promise.resolve(this.#settled);
    return this.#outcome;
  }

  /** Made when first asked for: a takeover answered at once (a fetch that finds a job) never needs one. */
  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController();
      if (this.#abortedBy !== undefined) this.#controller.abort(this.#abortedBy);
    }
    return this.#controller.signal;
  }

  abort(reason: ConnectionClosedError): void {
    this.#abortedBy = reason;
    this.#controller?.abort(reason);
  }

  settle(outcome: ReplyOutcome): void {
    if (this.#settled !== undefined) return;
    this.#settled = outcome;
    this.#resolve?.(outcome);
    this.onSettled?.(outcome);
  }
}

/**
 * One worker connection and its own connection to Redis. Worker bytes go to Redis as received, reply bytes to the
 * worker as received; the scanners only find where commands and replies end, to keep a FIFO of the replies Redis
 * owes and to take over commands.
 */
export class Link {
  readonly info: ConnectionInfo;
  readonly #worker: Socket;
  readonly #upstream: Socket;
  readonly #context: LinkContext;
  readonly #commands: CommandScanner;
  readonly #replies = new ReplyScanner();
  readonly #expected = new Fifo<Expected>();
  /** Taken-over commands' replies not written yet, in order. */
  readonly #pendingReplies: PendingReply[] = [];
  /** Taken-over commands' replies whose outcome is not known yet. */
  readonly #unsettled = new Set<PendingReply>();
  readonly #sink: CommandSink = {
    forward: (bytes) => this.#toUpstream(bytes),
    command: (command) => this.#onCommand(command),
  };
  #held: Buffer[] = [];
  #heldBytes = 0;
  #protocol: RespProtocol = 2;
  #inTransaction = false;
  #mode = MATCHING;
  #workerRepliesOwed = 0;
  #workerRepliesDone = 0;
  #takeoverActive = false;
  #startTakeover: (() => void) | undefined;
  #workerPaused = 0;
  #closed: ConnectionClosedError | undefined;
  // The reply being scanned: who it is for, and the bytes of the current chunk not yet written to the worker.
  #owner: Expected | undefined;
  #chunk: Buffer | undefined;
  #runStart = 0;
  #frameParts: Buffer[] = [];
  #frameBytes = 0;

  constructor(worker: Socket, upstream: Socket, info: ConnectionInfo, context: LinkContext) {
    this.info = info;
    this.#worker = worker;
    this.#upstream = upstream;
    this.#context = context;
    this.#commands = new CommandScanner(this.#capturePolicy(context.hooks.capture));
    worker.on('data', (chunk: Buffer) => this.#fromWorker(chunk));
    worker.on('drain', () => upstream.resume());
    worker.on('end', () => this.close('worker'));
    worker.on('error', () => this.close('worker'));
    worker.on('close', () => this.close('worker'));
    upstream.on('data', (chunk: Buffer) => this.#fromUpstream(chunk));
    upstream.on('drain', () => this.#resumeWorker(UPSTREAM_FULL));
    upstream.on('end', () => this.close('upstream', 'end'));
    upstream.on('error', (error: NodeJS.ErrnoException) => this.#upstreamFailed(error));
    upstream.on('close', () => this.close('upstream'));
  }

  /**
   * Ends both connections at once; a takeover in progress is aborted. 'end' lets the worker read what was
   * already written to it (Redis closed after its last reply); bytes are a last reply written before that.
   */
  close(closedBy: ClosedBy, last?: 'end' | Buffer): void {
    if (this.#closed !== undefined) return;
    const error = new ConnectionClosedError(closedBy);
    this.#closed = error;
    const destroyWorker = (): void => void this.#worker.destroy();
    if (last === undefined) destroyWorker();
    else if (last === 'end') this.#worker.end(destroyWorker);
    else this.#worker.end(last, destroyWorker);
    this.#upstream.destroy();
    for (const expected of this.#expected.clear()) if (expected.to === 'hook') expected.reject(error);
    for (const pending of this.#unsettled) {
      pending.abort(error);
      pending.settle(pending.written ? 'unknown' : 'not-sent');
    }
    this.#unsettled.clear();
    this.#pendingReplies.length = 0;
    this.#held = [];
    this.#heldBytes = 0;
    this.#frameParts = [];
    this.#context.closed(this);
  }

  // --- worker → Redis ---

  #fromWorker(chunk: Buffer): void {
    if (this.#closed !== undefined) return;
    this.#context.counters.bytesFromWorkers += chunk.length;
    if (this.#takeoverActive || this.#held.length > 0) this.#hold(chunk, false);
    else this.#scan(chunk);
  }

  #scan(chunk: Buffer): void {
    let consumed: number;
    try {
      consumed = this.#commands.feed(chunk, this.#sink);
    } catch (error) {
      if (!(error instanceof ProtocolError)) throw error;
      this.#workerProtocolError(error);
      return;
    }
    if (consumed < chunk.length && this.#closed === undefined) this.#hold(chunk.subarray(consumed), true);
    const start = this.#startTakeover;
    this.#startTakeover = undefined;
    start?.();
  }

  #hold(chunk: Buffer, first: boolean): void {
    if (first) this.#held.unshift(chunk);
    else this.#held.push(chunk);
    this.#heldBytes += chunk.length;
    if (this.#heldBytes > MAX_HELD_BYTES) this.#pauseWorker(HOLDING);
  }

  /** After a takeover: the commands held back go on, until the next takeover among them. */
  #releaseHeld(): void {
    while (this.#closed === undefined && !this.#takeoverActive && this.#held.length > 0) {
      const chunk = this.#held.shift() as Buffer;
      this.#heldBytes -= chunk.length;
      this.#scan(chunk);
    }
    if (this.#heldBytes <= MAX_HELD_BYTES) this.#resumeWorker(HOLDING);
  }

  /** The sink's command(): true stops the scan (a takeover began). */
  #onCommand(command: ScannedCommand): boolean {
    if (this.#closed !== undefined) return true;
    const { hooks } = this.#context;
    const relayed: RelayedCommand = {
      name: command.name,
      argCount: command.argCount,
      args: command.args,
      firstArgument: command.firstArgument,
      connection: this.info,
      protocol: this.#protocol,
      inTransaction: this.#inTransaction,
    };
    if (hooks.observe !== undefined) this.#guard('observe', () => hooks.observe?.(relayed), undefined);
    if (this.#mode === MATCHING && !this.#inTransaction && command.raw !== undefined && hooks.takeover !== undefined) {
      const takeover = this.#guard('takeover', () => hooks.takeover?.(relayed), undefined);
      if (typeof takeover === 'function') {
        this.#beginTakeover(command, relayed, takeover);
        return true;
      }
      if (takeover !== undefined) {
        this.#beginSwap(command, relayed, takeover);
        return true;
      }
    }
    this.#relay(command);
    return false;
  }

  #relay(command: ScannedCommand): void {
    for (const piece of command.raw ?? []) this.#toUpstream(piece);
    this.#context.counters.commandsRelayed++;
    this.#track(command);
  }

  /** What the command changes in the connection's state, and the reply Redis owes for it. */
  #track({ name, argCount, args }: ScannedCommand): void {
    let onReply: ((kind: FrameKind) => void) | undefined;
    if (UNMATCHED_COMMANDS.has(name)) {
      this.#leaveMatching();
    } else if (name === 'MULTI') {
      if (argCount === 0) this.#inTransaction = true;
    } else if (name === 'EXEC' || name === 'DISCARD') {
      if (argCount === 0) this.#inTransaction = false;
    } else if (name === 'HELLO' || name === 'RESET') {
      // Inside MULTI they would change the protocol only at EXEC; an uncaptured HELLO cannot be read.
      if (this.#inTransaction || (name === 'HELLO' && args === undefined)) this.#leaveMatching();
      else onReply = this.#protocolChange(name === 'RESET' ? 2 : helloVersion(args ?? []));
    } else if (name === 'CLIENT') {
      // CLIENT REPLY OFF and SKIP silence replies.
      if (args === undefined || (upperCase(args[0]) === 'REPLY' && upperCase(args[1]) !== 'ON')) this.#leaveMatching();
    }
    if (this.#mode !== MATCHING) return;
    this.#expected.push(onReply === undefined ? WORKER_REPLY : { to: 'worker', onReply });
    this.#workerRepliesOwed++;
    if (this.#expected.length > MAX_OWED_REPLIES) this.#pauseWorker(OWING);
  }

  #protocolChange(version: RespProtocol | undefined): ((kind: FrameKind) => void) | undefined {
    if (version === undefined) return undefined;
    return (kind) => {
      if (kind !== 'error') this.#protocol = version;
    };
  }

  #leaveMatching(): void {
    if (this.#mode === MATCHING) this.#mode = DRAINING;
    this.#passThroughWhenDrained();
  }

  /** Switches to pass-through once every reply owed before the switch was matched. True when it did. */
  #passThroughWhenDrained(): boolean {
    if (this.#mode !== DRAINING || this.#expected.length > 0 || this.#pendingReplies.length > 0) return false;
    this.#mode = PASSTHROUGH;
    return true;
  }

  #toUpstream(bytes: Buffer): void {
    if (!this.#upstream.write(bytes)) this.#pauseWorker(UPSTREAM_FULL);
  }

  #workerProtocolError(error: ProtocolError): void {
    this.#context.counters.protocolErrors++;
    this.#context.warnings.warn(
      `worker-protocol:${error.kind}`,
      { connection: this.info.id, reason: error.message },
      "a worker's Redis connection sent bytes that are not Redis protocol; closed it",
    );
    // As redis-server does, an error reply, when it cannot come before a reply the worker is owed.
    const owesNothing = this.#mode === MATCHING && this.#expected.length === 0 && this.#pendingReplies.length === 0;
    this.close('protocol', owesNothing ? encodeError(`ERR ${error.message}`) : undefined);
  }

  // --- takeovers ---

  #beginTakeover(command: ScannedCommand, relayed: RelayedCommand, handler: TakeoverHandler): void {
    const pending = this.#openTakeover();
    this.#startTakeover = () => this.#runHandler(handler, pending, command, relayed);
  }

  /**
   * The swap's command goes to Redis at once in the worker's command's place; its reply, as soon as it is
   * read, is the worker's reply or the start of a handler (see CommandSwap).
   */
  #beginSwap(command: ScannedCommand, relayed: RelayedCommand, swap: CommandSwap): void {
    const pending = this.#openTakeover();
    const answered = (reply: RespValue | Error): void => {
      const answer = this.#guard('takeover', () => swap.answer(reply), undefined);
      if (this.#closed !== undefined) return;
      if (answer === undefined) this.#takeoverFailed('the swap failed to answer', true);
      else if (typeof answer === 'function') queueMicrotask(() => this.#runHandler(answer, pending, command, relayed));
      else if (this.#endTakeover()) {
        pending.onSettled = (outcome) => this.#guard('takeover', () => swap.settled(outcome), undefined);
        pending.reply = answer;
        // Written by the frame's end (#onFrame), after what came before it.
      }
    };
    this.#expected.push({ to: 'hook', resolve: answered, reject: answered });
    this.#toUpstream(swap.send);
  }

  /** A takeover's reply slot, after the worker's replies owed so far; the worker's later commands wait. */
  #openTakeover(): PendingReply {
    this.#context.counters.commandsTakenOver++;
    const pending = new PendingReply(this.#workerRepliesOwed);
    this.#pendingReplies.push(pending);
    this.#unsettled.add(pending);
    this.#takeoverActive = true;
    return pending;
  }

  /** Lets the worker's later commands go on; false when the connection has closed meanwhile. */
  #endTakeover(): boolean {
    if (this.#closed !== undefined) return false;
    this.#takeoverActive = false;
    if (this.#held.length > 0) queueMicrotask(() => this.#releaseHeld());
    return true;
  }

  #runHandler(handler: TakeoverHandler, pending: PendingReply, command: ScannedCommand, relayed: RelayedCommand): void {
    let ended = false;
    /** Ends the takeover; false when the connection has closed meanwhile. */
    const end = (): boolean => {
      if (ended) throw new Error('the takeover has already ended');
      ended = true;
      return this.#endTakeover();
    };
    const link = this;
    const session: TakeoverSession = {
      connection: this.info,
      command: relayed,
      get signal() {
        return pending.signal;
      },
      get protocol() {
        return link.#protocol;
      },
      send: (args) => (ended ? Promise.reject(new Error('the takeover has ended')) : this.#hookSend(args)),
      reply: (reply) => {
        if (end()) {
          pending.reply = reply;
          this.#writePendingReplies();
        }
        return pending.outcome;
      },
      forward: () => {
        if (!end()) return;
        this.#pendingReplies.splice(this.#pendingReplies.indexOf(pending), 1);
        this.#unsettled.delete(pending);
        this.#relay(command);
      },
    };
    let run: Promise<void>;
    try {
      run = handler(session);
    } catch (error) {
      run = Promise.reject(error);
    }
    run.then(
      () => {
        if (!ended) this.#takeoverFailed('the handler returned without a reply', true);
      },
      (error: unknown) => {
        const reason = `the handler failed: ${error instanceof Error ? error.message : String(error)}`;
        this.#takeoverFailed(reason, !ended);
      },
    );
  }

  /** A handler that failed before its reply leaves the worker waiting: its connection is closed. */
  #takeoverFailed(reason: string, unanswered: boolean): void {
    if (this.#closed !== undefined) return;
    this.#context.warnings.warn(
      'takeover',
      { connection: this.info.id, reason },
      unanswered
        ? "a takeover of a worker's Redis command failed; closed the connection"
        : "a takeover of a worker's Redis command failed after its reply",
    );
    if (unanswered) this.close('takeover');
  }

  #hookSend(command: readonly (string | Buffer)[]): Promise<RespValue> {
    if (this.#closed !== undefined) return Promise.reject(this.#closed);
    return new Promise((resolve, reject) => {
      this.#expected.push({ to: 'hook', resolve, reject });
      this.#toUpstream(encodeBulkArray(command));
    });
  }

  /**
   * Writes the pending replies that are due. Inside a reply chunk (runEnd), the bytes before runEnd go first;
   * outside, only while no reply is half written to the worker (the next frame end writes them otherwise).
   */
  #writePendingReplies(runEnd?: number): void {
    if (runEnd === undefined && !this.#replies.atBoundary && this.#owner?.to !== 'hook') return;
    for (;;) {
      const pending = this.#pendingReplies[0];
      if (pending?.reply === undefined || pending.after > this.#workerRepliesDone) return;
      this.#pendingReplies.shift();
      if (runEnd !== undefined) this.#writeRun(runEnd);
      const reply = pending.reply;
      const bytes = this.#guard(
        'reply',
        () => (typeof reply === 'function' ? reply(this.#protocol) : reply),
        undefined,
      );
      if (bytes === undefined) {
        this.close('takeover');
        return;
      }
      pending.written = true;
      this.#toWorker(bytes, (error) => {
        this.#unsettled.delete(pending);
        pending.settle(error === undefined || error === null ? 'flushed' : 'unknown');
      });
    }
  }

  // --- Redis → worker ---

  #fromUpstream(chunk: Buffer): void {
    if (this.#closed !== undefined) return;
    if (this.#mode === PASSTHROUGH) {
      this.#toWorker(chunk);
      return;
    }
    if (this.#replies.atBoundary) this.#owner = this.#expected.peek();
    this.#chunk = chunk;
    this.#runStart = 0;
    try {
      this.#replies.feed(chunk, this.#onFrame);
    } catch (error) {
      if (!(error instanceof ProtocolError)) throw error;
      this.#chunk = undefined;
      this.#upstreamProtocolError(error);
      return;
    }
    this.#chunk = undefined;
    if (this.#closed !== undefined) return;
    if (this.#owner?.to === 'hook' && !this.#replies.atBoundary) this.#collect(chunk.subarray(this.#runStart));
    else this.#writeRun(chunk.length, chunk);
  }

  /** The scanner's onFrame: a whole reply frame ends at `end` of the current chunk. True stops the scan. */
  readonly #onFrame = (end: number, kind: FrameKind): boolean => {
    const owner = this.#owner;
    if (owner?.to === 'hook') {
      const frame = this.#takeFrame(end);
      if (frame === undefined) return true;
      if (kind === 'push') {
        this.#toWorker(frame);
      } else {
        this.#expected.shift();
        settleHookReply(owner, frame);
      }
    } else if (kind !== 'push') {
      if (owner === undefined) return this.#unexpectedReply();
      this.#expected.shift();
      owner.onReply?.(kind);
      this.#workerRepliesDone++;
    }
    if (this.#expected.length <= MAX_OWED_REPLIES / 2) this.#resumeWorker(OWING);
    this.#owner = this.#expected.peek();
    // A hook's reply is kept whole: the worker's bytes before it go out first.
    if (this.#owner?.to === 'hook') this.#writeRun(end);
    this.#writePendingReplies(end);
    return this.#closed !== undefined || this.#passThroughWhenDrained();
  };

  /** Writes the bytes of the current chunk from the last write up to `end` to the worker. */
  #writeRun(end: number, chunk = this.#chunk): void {
    if (chunk !== undefined && end > this.#runStart) {
      this.#toWorker(this.#runStart === 0 && end === chunk.length ? chunk : chunk.subarray(this.#runStart, end));
    }
    this.#runStart = end;
  }

  #collect(piece: Buffer): boolean {
    this.#frameParts.push(piece);
    this.#frameBytes += piece.length;
    if (this.#frameBytes <= MAX_HOOK_REPLY_BYTES) return true;
    this.#context.warnings.warn(
      'hook-reply-size',
      { connection: this.info.id, maxBytes: MAX_HOOK_REPLY_BYTES },
      "a reply to a takeover's own command is too large; closed the connection",
    );
    this.close('takeover');
    return false;
  }

  /** The whole frame of a hook's reply, ending at `end` of the current chunk. */
  #takeFrame(end: number): Buffer | undefined {
    const chunk = this.#chunk as Buffer;
    if (!this.#collect(chunk.subarray(this.#runStart, end))) return undefined;
    this.#runStart = end;
    const frame = this.#frameParts.length === 1 ? (this.#frameParts[0] as Buffer) : Buffer.concat(this.#frameParts);
    this.#frameParts = [];
    this.#frameBytes = 0;
    return frame;
  }

  /** A reply nobody asked for: the relay's idea of the connection is wrong, so it stops matching. */
  #unexpectedReply(): boolean {
    this.#context.warnings.warn(
      'unexpected-reply',
      { connection: this.info.id },
      "Redis sent a reply no command of a worker's connection was waiting for; relaying it without matching",
    );
    // A takeover's reply could no longer be put in its place.
    if (this.#takeoverActive || this.#pendingReplies.length > 0) {
      this.close('protocol');
      return true;
    }
    this.#mode = PASSTHROUGH;
    return true;
  }

  #toWorker(bytes: Buffer, written?: (error: Error | null | undefined) => void): void {
    this.#context.counters.bytesToWorkers += bytes.length;
    if (!this.#worker.write(bytes, written)) this.#upstream.pause();
  }

  #upstreamFailed(error: NodeJS.ErrnoException): void {
    if (this.#closed !== undefined) return;
    const connecting = error.syscall === 'connect' || error.syscall === 'getaddrinfo';
    this.#context.warnings.warn(
      connecting ? 'upstream-connect' : 'upstream-error',
      { redis: this.#context.redis, reason: error.code ?? error.message },
      connecting
        ? "could not connect to Redis for a worker's connection; closed it"
        : "lost the Redis connection of a worker's connection; closed it",
    );
    this.close('upstream');
  }

  #upstreamProtocolError(error: ProtocolError): void {
    this.#context.warnings.warn(
      'upstream-protocol',
      { redis: this.#context.redis, reason: error.message },
      "Redis sent bytes that are not Redis protocol on a worker's connection; closed it",
    );
    this.close('upstream');
  }

  // --- back-pressure ---

  #pauseWorker(reason: number): void {
    if (this.#workerPaused === 0) this.#worker.pause();
    this.#workerPaused |= reason;
  }

  #resumeWorker(reason: number): void {
    if ((this.#workerPaused & reason) === 0) return;
    this.#workerPaused &= ~reason;
    if (this.#workerPaused === 0 && this.#closed === undefined) this.#worker.resume();
  }

  // --- hooks ---

  /** The hooks' capture policy, plus the relay's own needs; a throwing policy captures nothing. */
  #capturePolicy(capture: CapturePolicy | undefined): CapturePolicy {
    return (name, argCount) => {
      const wanted = capture === undefined ? 0 : this.#guard('capture', () => capture(name, argCount), 0);
      if (!TRACKED_COMMANDS.has(name)) return wanted;
      if (typeof wanted === 'number') return Math.max(wanted, TRACKED_COMMAND_BYTES);
      return {
        firstArgument: (first) =>
          Math.max(
            this.#guard('capture', () => wanted.firstArgument(first), 0),
            TRACKED_COMMAND_BYTES,
          ),
      };
    };
  }

  /** Runs a hook; an exception is a warning and the fallback, never a crash of the relay. */
  #guard<T>(hook: string, call: () => T, fallback: T): T {
    try {
      return call();
    } catch (error) {
      this.#context.warnings.warn(
        `hook:${hook}`,
        { hook, reason: error instanceof Error ? error.message : String(error) },
        'a Redis relay hook threw; carried on without it',
      );
      return fallback;
    }
  }
}

function settleHookReply(expected: Extract<Expected, { to: 'hook' }>, frame: Buffer): void {
  let value: RespValue;
  try {
    value = decodeReply(frame);
  } catch (error) {
    expected.reject(error as Error);
    return;
  }
  if (value instanceof RespError) expected.reject(value);
  else expected.resolve(value);
}

function helloVersion(args: readonly Buffer[]): RespProtocol | undefined {
  const version = args[0]?.toString('latin1');
  return version === '2' ? 2 : version === '3' ? 3 : undefined;
}

function upperCase(bytes: Buffer | undefined): string {
  return bytes?.toString('latin1').toUpperCase() ?? '';
}

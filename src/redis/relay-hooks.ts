import type { CapturePolicy } from './resp-commands.js';
import type { RespProtocol } from './resp-encode.js';
import type { RespValue } from './resp-values.js';

/** One worker connection to the relay, and its own connection to Redis. */
export interface ConnectionInfo {
  /** 1, 2, 3, ... in the order the relay accepted them. */
  readonly id: number;
  /**
   * The worker's end of its TCP connection to the relay (undefined on a Unix socket): its process is the one that
   * holds the socket with this local port in /proc/net/tcp (remote port `relayPort`), found by inode in /proc/<pid>/fd.
   */
  readonly workerAddress: string | undefined;
  readonly workerPort: number | undefined;
  readonly relayPort: number | undefined;
  /** When the relay accepted it, in ms since the epoch. */
  readonly openedAt: number;
}

/** A command a worker sent, as the hooks see it. */
export interface RelayedCommand {
  /** Upper-cased; '' for a name no command has (longer than 256 bytes). */
  readonly name: string;
  /** Arguments after the name. */
  readonly argCount: number;
  /** The arguments after the name, when the capture policy captured the command (and the relay's own needs may). */
  readonly args: readonly Buffer[] | undefined;
  /** The first argument, when the capture policy asked to see it (whether or not the command was captured). */
  readonly firstArgument: Buffer | undefined;
  readonly connection: ConnectionInfo;
  /** The connection's protocol as known when the command arrived (a HELLO before it may still be unanswered). */
  readonly protocol: RespProtocol;
  /** Sent between MULTI and EXEC/DISCARD: queued by Redis, not run. */
  readonly inTransaction: boolean;
}

/**
 * Where a taken-over command's reply ended up when its connection closed, or once it was handed to the worker's
 * socket: 'flushed' (handed to the kernel: the worker may have read it), 'not-sent' (no byte of it left the relay),
 * 'unknown' (being written when the connection closed).
 */
export type ReplyOutcome = 'flushed' | 'not-sent' | 'unknown';

/** Which side ended a connection. */
export type ClosedBy = 'worker' | 'upstream' | 'relay' | 'protocol' | 'takeover';

/** The reason of an aborted session's signal and of a rejected send(). */
export class ConnectionClosedError extends Error {
  override readonly name = 'ConnectionClosedError';

  constructor(readonly closedBy: ClosedBy) {
    super(`the worker connection closed (${closedBy})`);
  }
}

/**
 * A command taken over: the relay does not forward it, and holds back the worker's later commands (reading on,
 * up to 1 MiB, so that a worker that goes away is noticed) until reply() or forward() ends the takeover.
 */
export interface TakeoverSession {
  readonly connection: ConnectionInfo;
  readonly command: RelayedCommand;
  /** The connection's protocol now (replies to commands sent before this one may still change it). */
  readonly protocol: RespProtocol;
  /**
   * Aborted when the connection closes before the reply was flushed to the worker: the worker went away, Redis
   * went away, the relay closed. Its reason is a ConnectionClosedError.
   */
  readonly signal: AbortSignal;
  /**
   * Sends a command of the hook's own on this connection's Redis connection, after every command the worker sent
   * before the taken-over one. Resolves with the decoded reply; an error reply rejects with a RespError; a closed
   * connection rejects with a ConnectionClosedError. Only while the takeover lasts.
   */
  send(command: readonly (string | Buffer)[]): Promise<RespValue>;
  /**
   * Ends the takeover with this reply to the worker: written after the replies to the worker's earlier commands,
   * before those to its later ones. A function is called with the protocol in force when the reply is written.
   * Resolves with where the reply ended up (see ReplyOutcome).
   */
  reply(reply: Buffer | ((protocol: RespProtocol) => Buffer)): Promise<ReplyOutcome>;
  /** Ends the takeover by sending the worker's command to Redis unchanged after all, its reply to the worker. */
  forward(): void;
}

/**
 * Runs a takeover. The session must end with reply() or forward(); a handler that settles without either, or
 * rejects before either, gets its connection closed (the worker reconnects) and a warning.
 */
export type TakeoverHandler = (session: TakeoverSession) => Promise<void>;

/**
 * A takeover that starts with a command of the hook's own, sent in place of the worker's at once, and answers
 * Redis's reply to it without a promise: the cheap path of a takeover that mostly needs one round trip (a fetch
 * that finds its job). The worker's later commands wait, as in any takeover.
 */
export interface CommandSwap {
  /** The hook's command, encoded (a RESP multibulk, as encodeBulkArray makes it). */
  readonly send: Buffer;
  /**
   * Redis's reply to `send`, decoded; an error reply as a RespError; a ConnectionClosedError when the connection
   * closed first (then what it returns is dropped). Returns the worker's reply, or a handler that goes on as a
   * takeover (its session's reply is the worker's).
   */
  answer(reply: RespValue | Error): Buffer | TakeoverHandler;
  /** Where a reply answered as bytes ended up (see ReplyOutcome). */
  settled(outcome: ReplyOutcome): void;
}

/** drain-init's view into the relay. Exceptions thrown by these are logged as warnings and do not stop the relay. */
export interface RelayHooks {
  /**
   * Which commands to capture: observe() sees their arguments, and only captured commands can be taken over.
   * The relay captures HELLO and CLIENT itself (up to 64 KiB) to follow the protocol and CLIENT REPLY.
   */
  readonly capture?: CapturePolicy;
  /** Called for every command a worker sends, in order, when it is complete. */
  readonly observe?: (command: RelayedCommand) => void;
  /**
   * Called for a captured command sent outside MULTI on a connection whose replies are matched to its commands;
   * returns a handler or a swap to take the command over, or undefined to forward it.
   */
  readonly takeover?: (command: RelayedCommand) => TakeoverHandler | CommandSwap | undefined;
  /** Called once a worker connection has closed, whichever side closed it. */
  readonly closed?: (connection: ConnectionInfo) => void;
}

import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { systemClock, type Clock } from '../lib/clock.js';
import type { Logger } from '../log/logger.js';
import { ThrottledWarnings } from '../log/throttle.js';
import type { RedisEndpoint } from './url.js';
import type { RelayHooks } from './relay-hooks.js';
import { Link, type RelayCounters } from './relay-link.js';
import { connectRedisSocket } from './socket.js';

/** Worker connections open at once, at most: a worker process opens a few (Sidekiq: concurrency + 2 or so). */
export const MAX_CONNECTIONS = 1024;
/** Each kind of warning is logged at most once a minute, with how many were held back. */
const WARNING_INTERVAL_MS = 60_000;
const HOST = '127.0.0.1';

export interface RelayOptions {
  /** The real Redis: drain-init's parsed URL. The relay never authenticates: the worker's AUTH/HELLO pass through. */
  readonly upstream: Pick<RedisEndpoint, 'host' | 'port' | 'tls'>;
  readonly log: Logger;
  readonly hooks?: RelayHooks;
  /** Where to listen: a port on 127.0.0.1 (default: a free one), or a Unix socket in a new 0700 directory made under `unixSocketUnder`. */
  readonly listen?: { readonly port: number } | { readonly unixSocketUnder: string };
  readonly maxConnections?: number;
  /** For throttling warnings and the connections' opening times (default: the system clock). */
  readonly clock?: Pick<Clock, 'now' | 'epochMs'>;
}

export type RelayStats = Readonly<RelayCounters>;

export interface Relay {
  /** The port on 127.0.0.1 workers connect to; undefined with a Unix socket. */
  readonly port: number | undefined;
  /** The Unix socket's path; undefined on TCP. */
  readonly path: string | undefined;
  stats(): RelayStats;
  /**
   * Stops listening and ends every connection at once (takeovers are aborted). Synchronous in effect; the promise
   * resolves when the listening socket is closed.
   */
  close(): Promise<void>;
}

/**
 * Starts the Redis endpoint for the worker: every accepted connection gets its own connection to the real Redis,
 * and bytes are relayed both ways unchanged but for the commands a hook takes over. Nothing in it keeps the
 * process alive.
 */
export async function startRelay(options: RelayOptions): Promise<Relay> {
  const { upstream, log } = options;
  const hooks = options.hooks ?? {};
  const maxConnections = options.maxConnections ?? MAX_CONNECTIONS;
  const clock = options.clock ?? systemClock;
  const warnings = new ThrottledWarnings(log, WARNING_INTERVAL_MS, clock);
  const redis = `${upstream.tls ? 'rediss' : 'redis'}://${upstream.host.includes(':') ? `[${upstream.host}]` : upstream.host}:${upstream.port}`;
  const counters: RelayCounters = {
    connectionsOpen: 0,
    connectionsTotal: 0,
    connectionsRefused: 0,
    commandsRelayed: 0,
    commandsTakenOver: 0,
    protocolErrors: 0,
    bytesFromWorkers: 0,
    bytesToWorkers: 0,
  };
  const links = new Set<Link>();
  /** Every worker socket, including those still flushing a last reply after their link closed. */
  const workers = new Set<Socket>();
  const context = {
    hooks,
    counters,
    warnings,
    redis,
    closed: (link: Link) => {
      links.delete(link);
      if (hooks.closed !== undefined) {
        try {
          hooks.closed(link.info);
        } catch (error) {
          warnings.warn(
            'hook closed',
            { reason: (error as Error).message },
            'a Redis relay hook failed; the relay goes on',
          );
        }
      }
    },
  };
  let nextId = 1;
  let closing = false;

  const server = createServer({ noDelay: true });
  server.maxConnections = maxConnections;
  server.on('drop', () => {
    counters.connectionsRefused++;
    warnings.warn(
      'connection-cap',
      { maxConnections },
      'worker connections to the Redis relay at their cap; refused one',
    );
  });
  server.on('connection', (worker: Socket) => {
    worker.unref();
    if (closing) {
      worker.destroy();
      return;
    }
    counters.connectionsOpen++;
    counters.connectionsTotal++;
    workers.add(worker);
    worker.once('close', () => {
      workers.delete(worker);
      counters.connectionsOpen--;
    });
    const link = new Link(
      worker,
      connectRedisSocket(upstream),
      {
        id: nextId++,
        workerAddress: worker.remoteAddress,
        workerPort: worker.remotePort,
        relayPort: worker.localPort,
        openedAt: clock.epochMs(),
      },
      context,
    );
    links.add(link);
  });

  const socketDir =
    options.listen !== undefined && 'unixSocketUnder' in options.listen
      ? privateDir(options.listen.unixSocketUnder)
      : undefined;
  const path = socketDir === undefined ? undefined : join(socketDir, 'redis.sock');
  try {
    await listen(server, path ?? (options.listen !== undefined && 'port' in options.listen ? options.listen.port : 0));
  } catch (error) {
    if (socketDir !== undefined) rmSync(socketDir, { recursive: true, force: true });
    throw error;
  }
  server.on('error', (error: NodeJS.ErrnoException) => {
    // accept() failures (EMFILE): that connection is lost, the server goes on.
    warnings.warn('accept', { reason: error.code ?? error.message }, 'the Redis relay could not accept a connection');
  });
  server.unref();
  const address = server.address();
  const closed = new Promise<void>((resolve) => server.once('close', () => resolve()));

  return {
    port: typeof address === 'object' && address !== null ? address.port : undefined,
    path,
    stats: () => ({ ...counters }),
    close: () => {
      if (!closing) {
        closing = true;
        server.close();
        for (const link of links) link.close('relay');
        for (const worker of workers) worker.destroy();
        if (socketDir !== undefined) rmSync(socketDir, { recursive: true, force: true });
      }
      return closed;
    },
  };
}

/** A new directory only this user can enter, for the Unix socket. */
function privateDir(parent: string): string {
  const dir = mkdtempSync(join(parent, 'drain-init-redis-'));
  chmodSync(dir, 0o700);
  return dir;
}

function listen(server: Server, where: number | string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    const listening = (): void => {
      server.off('error', reject);
      resolve();
    };
    if (typeof where === 'string') server.listen(where, listening);
    else server.listen(where, HOST, listening);
  });
}

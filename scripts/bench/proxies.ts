/**
 * The yardsticks of the Redis benchmarks: processes that copy bytes both ways between a loopback port and
 * Redis and read none of them, what any process on a worker's Redis path costs before it does anything with
 * the commands. Only erasable TypeScript syntax: the benchmarks run with Node 24's type stripping.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from '../../test/helpers/redis.ts';

/** A proxy's command line, given the port it listens on and Redis's. */
export type ProxyArgv = (listenPort: number, redisPort: number) => readonly string[];

/** scripts/bench/pipe-proxy.ts in Node, with `nodeFlags` (V8's, say) before the script. */
export const nodePipe =
  (nodeFlags: readonly string[] = []): ProxyArgv =>
  (listenPort, redisPort) => [
    process.execPath,
    ...nodeFlags,
    new URL('pipe-proxy.ts', import.meta.url).pathname,
    String(listenPort),
    String(redisPort),
  ];

/** socat, in C: forks a process per connection, which copies the bytes. */
export const socat: ProxyArgv = (listenPort, redisPort) => [
  'socat',
  `TCP-LISTEN:${listenPort},bind=127.0.0.1,reuseaddr,fork,nodelay`,
  `TCP:127.0.0.1:${redisPort},nodelay`,
];

/** Starts a proxy to Redis on a free port; resolves with it and its port once it accepts a connection. */
export async function startProxy(
  argv: ProxyArgv,
  redisPort: number,
): Promise<{ readonly proxy: ChildProcess; readonly port: number }> {
  const port = await freePort();
  const [program, ...args] = argv(port, redisPort);
  const proxy = spawn(program as string, args, { stdio: ['ignore', 'ignore', 'inherit'] });
  for (const deadline = Date.now() + 10_000; ;) {
    const accepted = await new Promise<boolean>((resolve) => {
      const probe = connect({ host: '127.0.0.1', port }, () => resolve(true)).on('error', () => resolve(false));
      probe.on('connect', () => probe.destroy());
    });
    if (accepted) return { proxy, port };
    if (Date.now() > deadline) {
      proxy.kill('SIGKILL');
      throw new Error(`${program} did not listen on port ${port}`);
    }
    await sleep(50);
  }
}

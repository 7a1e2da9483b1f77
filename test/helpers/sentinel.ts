// A real redis-sentinel on a free loopback port, watching one primary, for the Sentinel tests. It needs a
// writable config file of its own: Sentinel rewrites it as it learns about replicas and failovers.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectRedis, freePort, type RespValue } from './redis.ts';

export interface Sentinel {
  readonly port: number;
  call(...args: (string | number)[]): Promise<RespValue>;
  /** The primary's port as the sentinel names it now. */
  primaryPort(): Promise<number>;
  stop(): Promise<void>;
}

export async function startSentinel(masterName: string, primaryPort: number): Promise<Sentinel> {
  const dir = mkdtempSync(join(tmpdir(), 'drain-init-sentinel-'));
  const port = await freePort();
  const config = join(dir, 'sentinel.conf');
  writeFileSync(
    config,
    [
      `port ${port}`,
      'bind 127.0.0.1',
      `dir ${dir}`,
      `sentinel monitor ${masterName} 127.0.0.1 ${primaryPort} 1`,
      `sentinel down-after-milliseconds ${masterName} 1000`,
      `sentinel failover-timeout ${masterName} 5000`,
      '',
    ].join('\n'),
  );
  const child: ChildProcess = spawn('redis-sentinel', [config], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const { call } = connectRedis(port);
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      if ((await call('PING')) === 'PONG') break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline || child.exitCode !== null) {
      child.kill('SIGKILL');
      throw new Error(`redis-sentinel did not start:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return {
    port,
    call,
    primaryPort: async () => {
      const address = await call('SENTINEL', 'get-master-addr-by-name', masterName);
      return Array.isArray(address) ? Number(address[1]) : 0;
    },
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGKILL');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * The floor of any relay written for Node, for the endpoint benchmark: a TCP proxy on loopback that pipes
 * bytes both ways and reads nothing (no parsing, no hooks, no record), one upstream connection per client.
 *
 * Usage: node scripts/bench/pipe-proxy.ts <listen port> <upstream port>
 */
import { connect, createServer } from 'node:net';

const [listenPort = Number.NaN, upstreamPort = Number.NaN] = process.argv.slice(2).map(Number);
if (!Number.isInteger(listenPort) || !Number.isInteger(upstreamPort)) {
  process.stderr.write('usage: node scripts/bench/pipe-proxy.ts <listen port> <upstream port>\n');
  process.exit(2);
}

createServer({ noDelay: true }, (client) => {
  const upstream = connect({ host: '127.0.0.1', port: upstreamPort, noDelay: true });
  client.pipe(upstream).pipe(client);
  const closeBoth = (): void => {
    client.destroy();
    upstream.destroy();
  };
  for (const socket of [client, upstream]) socket.on('error', closeBoth).on('close', closeBoth);
}).listen(listenPort, '127.0.0.1');

// A throw-away certificate authority and a server certificate for 127.0.0.1 / localhost, made with openssl,
// for redis-server's TLS port in tests.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getCACertificates, setDefaultCACertificates } from 'node:tls';
import { freePort, startRedis, type RedisOptions, type RedisServer } from './redis.js';

export interface TlsRedis {
  readonly server: RedisServer;
  readonly tlsPort: number;
  stop(): Promise<void>;
}

/**
 * A redis-server with a TLS port beside its plain one, its throw-away certificate authority trusted by this
 * process as NODE_EXTRA_CA_CERTS would make drain-init trust it.
 */
export async function startTlsRedis(options: RedisOptions = {}): Promise<TlsRedis> {
  const dir = mkdtempSync(join(tmpdir(), 'drain-init-tls-'));
  makeCertificates(dir);
  const tlsPort = await freePort();
  const file = (name: string): string => join(dir, name);
  const server = await startRedis({
    ...options,
    extraArgs: [
      ...(options.extraArgs ?? []),
      ...['--tls-port', String(tlsPort), '--tls-cert-file', file('server.crt'), '--tls-key-file', file('server.key')],
      ...['--tls-ca-cert-file', file('ca.crt'), '--tls-auth-clients', 'no'],
    ],
  });
  setDefaultCACertificates([...getCACertificates('default'), readFileSync(file('ca.crt'), 'utf8')]);
  return {
    server,
    tlsPort,
    stop: async () => {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Writes ca.crt, ca.key, server.crt and server.key (valid one day) into dir. */
export function makeCertificates(dir: string): void {
  const openssl = (...args: string[]): void => void execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl(
    'req',
    '-x509',
    ...ec,
    '-keyout',
    'ca.key',
    '-out',
    'ca.crt',
    '-days',
    '1',
    '-subj',
    '/CN=drain-init test CA',
  );
  openssl('req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost');
  writeFileSync(join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  openssl(
    'x509',
    '-req',
    '-in',
    'server.csr',
    '-CA',
    'ca.crt',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    'server.crt',
    '-days',
    '1',
    '-extfile',
    'san.ext',
  );
}

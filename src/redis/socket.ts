import { connect as connectTcp, isIP, type Socket } from 'node:net';
import { connect as connectTls } from 'node:tls';
import type { RedisEndpoint } from './url.js';

/** A raw connection to Redis (TLS for rediss://) that never keeps drain-init alive. */
export function connectRedisSocket(endpoint: Pick<RedisEndpoint, 'host' | 'port' | 'tls'>): Socket {
  const { host, port } = endpoint;
  const socket = endpoint.tls
    ? connectTls({ host, port, ...(isIP(host) === 0 ? { servername: host } : {}) })
    : connectTcp({ host, port });
  socket.setNoDelay(true);
  socket.unref();
  return socket;
}

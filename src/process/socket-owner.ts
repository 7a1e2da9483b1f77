// Which process holds the other end of a loopback TCP connection: the table of /proc/net/tcp gives the
// socket's inode from its ports, and the file descriptors of the candidate processes give the owner.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

export interface TcpSocket {
  readonly localPort: number;
  readonly remotePort: number;
  readonly inode: number;
}

/** The IPv4 sockets of a /proc/net/tcp table (`sl local_address rem_address st ... inode`). */
export function parseTcpTable(text: string): TcpSocket[] {
  const sockets: TcpSocket[] = [];
  for (const line of text.split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    const [, local, remote] = fields;
    const inode = Number(fields[9]);
    const localPort = portOf(local);
    const remotePort = portOf(remote);
    if (localPort !== undefined && remotePort !== undefined && Number.isSafeInteger(inode) && inode > 0) {
      sockets.push({ localPort, remotePort, inode });
    }
  }
  return sockets;
}

/** `0100007F:1F91` is 127.0.0.1:8081. */
function portOf(address: string | undefined): number | undefined {
  const hex = address?.split(':')[1];
  return hex !== undefined && /^[0-9A-F]{4}$/i.test(hex) ? Number.parseInt(hex, 16) : undefined;
}

/**
 * The pid among `candidates` that holds the client end of a connection from `clientPort` to `serverPort`,
 * or undefined when none does (it exited, or the socket was passed to a process outside the candidates).
 */
export function socketOwner(clientPort: number, serverPort: number, candidates: Iterable<number>): number | undefined {
  const table = parseTcpTable(tryRead(() => readFileSync('/proc/net/tcp', 'utf8'), ''));
  const socket = table.find((entry) => entry.localPort === clientPort && entry.remotePort === serverPort);
  if (socket === undefined) return undefined;
  const link = `socket:[${socket.inode}]`;
  for (const pid of candidates) {
    const fds = tryRead(() => readdirSync(`/proc/${pid}/fd`), []);
    if (fds.some((fd) => tryRead(() => readlinkSync(`/proc/${pid}/fd/${fd}`), '') === link)) return pid;
  }
  return undefined;
}

function tryRead<T>(read: () => T, fallback: T): T {
  try {
    return read();
  } catch {
    return fallback;
  }
}

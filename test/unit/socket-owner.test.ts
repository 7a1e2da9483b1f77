import { createConnection, createServer, type AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { parseTcpTable, socketOwner } from '../../src/process/socket-owner.js';

describe('the owner of a loopback connection', () => {
  it('reads the ports and inode of each socket of /proc/net/tcp', () => {
    const table = [
      '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
      '   0: 0100007F:1F91 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 39158 1 0000000000000000 100 0 0 10 0',
      '   1: 0100007F:D3A2 0100007F:1F91 01 00000000:00000000 00:00000000 00000000     0        0 40112 1 0000000000000000 20 4 30 10 -1',
      '   2: garbage',
    ].join('\n');
    expect(parseTcpTable(table)).toEqual([
      { localPort: 8081, remotePort: 0, inode: 39158 },
      { localPort: 54178, remotePort: 8081, inode: 40112 },
    ]);
  });

  it('finds this process as the owner of a connection it made, and no owner among others', async () => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const serverPort = (server.address() as AddressInfo).port;
    const client = createConnection(serverPort, '127.0.0.1');
    await new Promise((resolve) => client.on('connect', resolve));
    try {
      const clientPort = client.localPort ?? 0;
      expect(socketOwner(clientPort, serverPort, [1, process.pid])).toBe(process.pid);
      expect(socketOwner(clientPort, serverPort, [1])).toBeUndefined();
      expect(socketOwner(clientPort + 1, serverPort, [process.pid])).toBeUndefined();
    } finally {
      client.destroy();
      server.close();
    }
  });
});

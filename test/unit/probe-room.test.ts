import { EventEmitter } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ConnectionRoom } from '../../src/probe/server.js';
import { FakeClock } from '../helpers/fake.js';

function answer(room: ConnectionRoom, socket: PassThrough): () => void {
  const response = new EventEmitter();
  room.answering({ socket } as unknown as IncomingMessage, response as unknown as ServerResponse);
  return () => response.emit('close');
}

/** A room whose "the event loop has read what is pending" comes when the test says: `read()`. */
function room(capacity: number, hardCap: number) {
  const clock = new FakeClock();
  let evicted = 0;
  const pending: (() => void)[] = [];
  const connections = new ConnectionRoom(
    { capacity, hardCap, minAgeMs: 100, minAgeOverCapMs: 10 },
    clock,
    () => evicted++,
    (action) => pending.push(action),
  );
  const open = (): PassThrough => {
    const socket = new PassThrough();
    connections.admit(socket);
    return socket;
  };
  /** One round of reads: what was pending before it is read (a round may ask for another). */
  const read = (): void => {
    for (const action of pending.splice(0)) action();
  };
  return { clock, connections, open, read, evicted: () => evicted };
}

describe('the room for connections', () => {
  it('closes the connection idle the longest to make room, never one being answered, and never a young one', () => {
    const { clock, connections, open, read, evicted } = room(2, 10);
    const first = open();
    clock.advance(200);
    const second = open();
    read();
    clock.advance(200);
    const done = answer(connections, first);
    // Over the room: once what the new one sent is read, the oldest idle goes (the oldest is being answered).
    const third = open();
    expect(second.destroyed).toBe(false);
    read();
    expect([first.destroyed, second.destroyed, third.destroyed]).toEqual([false, true, false]);
    // A burst: the new ones are all younger than 100 ms, so they stay until they are not.
    const burst = [open(), open(), open()];
    read();
    read();
    expect(burst.some((socket) => socket.destroyed)).toBe(false);
    expect(connections.size).toBe(5);
    // One of the burst sent its request at once and is being answered: it is never picked.
    answer(connections, burst[1] ?? new PassThrough());
    clock.advance(100);
    expect(third.destroyed).toBe(true);
    expect(burst.map((socket) => socket.destroyed)).toEqual([true, false, true]);
    expect(connections.size).toBe(2);
    done();
    expect(evicted()).toBe(4);
  });

  it('over the hard cap closes idle ones sooner, but never one whose request has not been read yet', async () => {
    const { clock, connections, open, read, evicted } = room(1, 2);
    const [one, two] = [open(), open()];
    read();
    clock.advance(50);
    // Over the hard cap: the oldest idle goes at once (older than 10 ms), not when 100 ms old.
    const three = open();
    expect([one.destroyed, two.destroyed, three.destroyed]).toEqual([true, false, false]);
    // A flood over the hard cap: the newest are kept until what they sent is read, old or not.
    answer(connections, two);
    const flood = [open(), open(), open()];
    clock.advance(20);
    expect(flood.some((socket) => socket.destroyed)).toBe(false);
    answer(connections, flood[0] ?? new PassThrough());
    read();
    expect(flood.some((socket) => socket.destroyed)).toBe(false);
    read();
    expect([three.destroyed, ...flood.map((socket) => socket.destroyed)]).toEqual([true, false, true, true]);
    expect(evicted()).toBe(4);
    two.destroy();
    await new Promise((resolve) => setImmediate(resolve));
    expect(connections.size).toBe(1);
  });
});

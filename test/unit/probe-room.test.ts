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

describe('the room for connections', () => {
  it('closes the connection idle the longest to let a new one in, never one being answered', () => {
    const clock = new FakeClock();
    const room = new ConnectionRoom(3, clock);
    const sockets = Array.from({ length: 3 }, () => {
      const socket = new PassThrough();
      expect(room.admit(socket)).toBe('admitted');
      clock.advance(10);
      return socket;
    });
    const [first, second, third] = sockets as [PassThrough, PassThrough, PassThrough];
    // The oldest is being answered, so the next oldest goes.
    const done = answer(room, first);
    expect(room.admit(new PassThrough())).toBe('evicted');
    expect(second.destroyed).toBe(true);
    expect(first.destroyed).toBe(false);
    // Once answered, its idle time counts from its answer: the third, untouched since it connected, goes first.
    clock.advance(10);
    done();
    clock.advance(10);
    expect(room.admit(new PassThrough())).toBe('evicted');
    expect(third.destroyed).toBe(true);
    expect(first.destroyed).toBe(false);
    expect(room.size).toBe(3);
  });

  it('refuses a new connection when every open one is being answered, and frees the room of closed ones', async () => {
    const room = new ConnectionRoom(2, new FakeClock());
    const [one, two] = [new PassThrough(), new PassThrough()];
    room.admit(one);
    room.admit(two);
    answer(room, one);
    answer(room, two);
    const late = new PassThrough();
    expect(room.admit(late)).toBe('refused');
    expect(late.destroyed).toBe(true);
    one.destroy();
    await new Promise((resolve) => setImmediate(resolve));
    expect(room.size).toBe(1);
    expect(room.admit(new PassThrough())).toBe('admitted');
  });
});

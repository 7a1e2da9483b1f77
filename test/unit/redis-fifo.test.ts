import { describe, expect, it } from 'vitest';
import { Fifo } from '../../src/redis/fifo.js';

describe('Fifo', () => {
  it('gives items back in the order pushed, across its compactions', () => {
    const fifo = new Fifo<number>();
    const out: number[] = [];
    let next = 0;
    // Pushes outpace shifts, so the consumed head grows past the compaction threshold many times.
    for (let round = 0; round < 5_000; round++) {
      for (let i = 0; i < 3; i++) fifo.push(next++);
      for (let i = 0; i < 2; i++) out.push(fifo.shift() as number);
      expect(fifo.length).toBe(next - out.length);
      expect(fifo.peek()).toBe(out.length);
    }
    while (fifo.length > 0) out.push(fifo.shift() as number);
    expect(out).toEqual(Array.from({ length: next }, (_, i) => i));
    expect(fifo.shift()).toBeUndefined();
    expect(fifo.peek()).toBeUndefined();
  });

  it('clear() empties it and returns what was in it', () => {
    const fifo = new Fifo<string>();
    for (const item of ['a', 'b', 'c']) fifo.push(item);
    fifo.shift();
    expect(fifo.clear()).toEqual(['b', 'c']);
    expect(fifo.length).toBe(0);
  });
});

// Ways to cut one byte stream into chunks, for checking that a streaming parser gives the same result however
// the network splits its input.

/** A small seeded PRNG (mulberry32), so that a failing random split can be replayed. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function cutAt(bytes: Buffer, cuts: readonly number[]): Buffer[] {
  const chunks: Buffer[] = [];
  let start = 0;
  for (const cut of [...cuts, bytes.length]) {
    if (cut > start) chunks.push(bytes.subarray(start, cut));
    start = Math.max(start, cut);
  }
  return chunks;
}

/** Inputs up to this size are also cut byte by byte and once at every position. */
const EXHAUSTIVE_BYTES = 4096;

/**
 * Every way worth trying: whole, byte by byte, cut once at every position (inputs up to 4 KiB), and `randomRuns`
 * random cuttings. Each is labelled for the failure message.
 */
export function* splits(bytes: Buffer, randomRuns = 50, seed = 1): Generator<{ label: string; chunks: Buffer[] }> {
  yield { label: 'whole', chunks: [bytes] };
  if (bytes.length <= EXHAUSTIVE_BYTES) {
    yield { label: 'byte by byte', chunks: cutAt(bytes, [...bytes.keys()].slice(1)) };
    for (let cut = 1; cut < bytes.length; cut++) yield { label: `cut at ${cut}`, chunks: cutAt(bytes, [cut]) };
  }
  const random = seededRandom(seed);
  for (let run = 0; run < randomRuns; run++) {
    const cuts = [...bytes.keys()].filter(() => random() < 0.2).sort((a, b) => a - b);
    yield { label: `random cuts ${cuts.join(',')}`, chunks: cutAt(bytes, cuts) };
  }
}

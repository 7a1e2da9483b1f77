import { describe, expect, it } from 'vitest';
import {
  beatAgeS,
  isDrained,
  isRegistered,
  NO_WORKER_SEEN,
  type WatchedProcess,
  type WorkerView,
} from '../../src/sidekiq/view.js';

const process = (fields: Partial<WatchedProcess> = {}): WatchedProcess => ({
  identity: 'web-1:12:abc',
  pid: 12,
  busy: 0,
  quiet: true,
  beatEpochS: 1_000,
  ...fields,
});
const view = (processes: WatchedProcess[], jobsInFlight = 0): WorkerView => ({
  processes,
  jobsInFlight,
  lastBeatEpochS: 1_000,
  redisAnswered: true,
});

describe('the worker view', () => {
  it('is drained only when every supervised process is quiet with no job, by its count and its work hash', () => {
    expect(isDrained(view([process()]))).toBe(true);
    expect(isDrained(view([process(), process({ identity: 'web-1:13:def', pid: 13 })]))).toBe(true);
    expect(isDrained(view([process(), process({ identity: 'web-1:13:def', pid: 13, quiet: false })]))).toBe(false);
    expect(isDrained(view([process({ busy: 1 })]))).toBe(false);
    expect(isDrained(view([process()], 1))).toBe(false);
    expect(isDrained(view([]))).toBe(false);
  });

  it('knows whether the worker registered only when Redis answered', () => {
    expect(isRegistered(view([process()]))).toBe(true);
    expect(isRegistered(view([]))).toBe(false);
    expect(isRegistered({ ...view([process()]), redisAnswered: false })).toBeUndefined();
    expect(isRegistered(NO_WORKER_SEEN)).toBeUndefined();
  });

  it('ages the newest heartbeat, never below zero, and has no age before the first', () => {
    expect(beatAgeS(view([process()]), 1_012.5)).toBe(12.5);
    expect(beatAgeS(view([process()]), 999)).toBe(0);
    expect(beatAgeS(NO_WORKER_SEEN, 1_000)).toBeUndefined();
  });
});

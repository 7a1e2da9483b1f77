import { describe, expect, it } from 'vitest';
import { liveness, readiness, statusDocument, type ProbeSnapshot } from '../../src/probe/state.js';
import type { WatchedProcess, WorkerView } from '../../src/sidekiq/view.js';

const NOW_S = 1_795_325_500;
const MAX_BEAT_AGE_MS = 60_000;

function snapshot(fields: Partial<ProbeSnapshot> = {}): ProbeSnapshot {
  return {
    state: 'running',
    childPid: 42,
    nowEpochMs: NOW_S * 1000,
    uptimeS: 12.34,
    restarts: 0,
    jobs: { recovered: 0, dead: 0, held: 0 },
    workerDeaths: new Map(),
    stop: undefined,
    signalsForwarded: new Map(),
    zombiesReaped: 0,
    redis: undefined,
    sidekiq: undefined,
    ...fields,
  };
}

function process(fields: Partial<WatchedProcess> = {}): WatchedProcess {
  return { identity: 'pod-1:7:ab12cd34ef56', pid: 7, busy: 1, quiet: false, beatEpochS: NOW_S - 3, ...fields };
}

function view(fields: Partial<WorkerView> = {}): WorkerView {
  return { processes: [process()], jobsInFlight: 1, lastBeatEpochS: NOW_S - 3, redisAnswered: true, ...fields };
}

describe('liveness', () => {
  it('is alive while the worker runs, in every phase of the stop', () => {
    for (const state of ['running', 'quieting', 'stopping', 'killing'] as const)
      expect(liveness(snapshot({ state }), MAX_BEAT_AGE_MS).ok).toBe(true);
  });

  it('fails once the worker has exited for good, not while drain-init is about to restart it', () => {
    expect(liveness(snapshot({ state: 'exited', childPid: undefined }), MAX_BEAT_AGE_MS)).toEqual({
      ok: false,
      reason: 'the worker has exited',
    });
    const restarting = snapshot({
      state: 'starting',
      childPid: undefined,
      sidekiq: view({ lastBeatEpochS: NOW_S - 600 }),
    });
    expect(liveness(restarting, MAX_BEAT_AGE_MS)).toEqual({
      ok: true,
      reason: 'starting: the worker is about to be restarted',
    });
  });

  it('fails when the Sidekiq heartbeat is older than the maximum while Redis answers', () => {
    const stale = view({ processes: [], lastBeatEpochS: NOW_S - 61 });
    expect(liveness(snapshot({ sidekiq: stale }), MAX_BEAT_AGE_MS)).toEqual({
      ok: false,
      reason: "the worker's last Sidekiq heartbeat is 61 s old, more than --max-beat-age 60s",
    });
    expect(liveness(snapshot({ sidekiq: view({ lastBeatEpochS: NOW_S - 59 }) }), MAX_BEAT_AGE_MS).ok).toBe(true);
  });

  it('never fails for a Redis outage alone, however old the last heartbeat seen', () => {
    const verdict = liveness(
      snapshot({ sidekiq: view({ lastBeatEpochS: NOW_S - 600, redisAnswered: false }) }),
      MAX_BEAT_AGE_MS,
    );
    expect(verdict).toEqual({
      ok: true,
      reason: 'alive; Redis does not answer, so the Sidekiq heartbeat is not checked',
    });
  });

  it('does not check the heartbeat before the first one, nor during a stop', () => {
    expect(
      liveness(snapshot({ sidekiq: view({ processes: [], lastBeatEpochS: undefined }) }), MAX_BEAT_AGE_MS).ok,
    ).toBe(true);
    expect(
      liveness(snapshot({ state: 'stopping', sidekiq: view({ lastBeatEpochS: NOW_S - 600 }) }), MAX_BEAT_AGE_MS).ok,
    ).toBe(true);
  });
});

describe('readiness', () => {
  it('is ready while a generic worker runs and no stop is under way', () => {
    expect(readiness(snapshot())).toEqual({ ok: true, reason: 'ready' });
  });

  it('is not ready from the first moment of a stop, nor after the exit', () => {
    expect(readiness(snapshot({ state: 'quieting' }))).toEqual({
      ok: false,
      reason: 'quieting: drain-init is stopping the worker',
    });
    expect(readiness(snapshot({ state: 'stopping' })).ok).toBe(false);
    expect(readiness(snapshot({ state: 'exited', childPid: undefined }))).toEqual({
      ok: false,
      reason: 'the worker has exited',
    });
    expect(readiness(snapshot({ state: 'starting', childPid: undefined }))).toEqual({
      ok: false,
      reason: 'starting: the worker is about to be restarted',
    });
  });

  it('waits for the first Sidekiq heartbeat', () => {
    expect(readiness(snapshot({ sidekiq: view({ processes: [], lastBeatEpochS: undefined }) }))).toEqual({
      ok: false,
      reason: 'waiting for the first Sidekiq heartbeat of the worker',
    });
    expect(readiness(snapshot({ sidekiq: view() })).ok).toBe(true);
  });

  it('is not ready when a Sidekiq process is quiet or none has a fresh heartbeat', () => {
    expect(
      readiness(
        snapshot({ sidekiq: view({ processes: [process(), process({ identity: 'pod-1:9:ff', quiet: true })] }) }),
      ),
    ).toEqual({
      ok: false,
      reason: 'Sidekiq process pod-1:9:ff is quiet: it takes no new job',
    });
    expect(readiness(snapshot({ sidekiq: view({ processes: [] }) })).reason).toBe(
      'no Sidekiq process of the worker has a fresh heartbeat',
    );
  });
});

describe('the status document', () => {
  it('has the state, the worker, the uptime and the restarts, and nothing else for a plain worker', () => {
    expect(statusDocument(snapshot())).toEqual({ state: 'running', childPid: 42, uptimeSeconds: 12.3, restarts: 0 });
  });

  it('has the stop plan and deadline while stopping, Redis, and each Sidekiq process without any job', () => {
    const document = statusDocument(
      snapshot({
        state: 'quieting',
        stop: {
          plan: 'TSTP now, TERM at +30.0 s, KILL at +58.0 s, deadline at +60.0 s',
          deadlineEpochMs: NOW_S * 1000 + 41_250,
        },
        redis: {
          connected: true,
          heartbeatFailures: 2,
          health: { state: 'up', reason: undefined, brokenKeys: ['drain-init:stops'] },
        },
        sidekiq: view({ jobsInFlight: 3 }),
      }),
    );
    expect(document).toEqual({
      state: 'quieting',
      childPid: 42,
      uptimeSeconds: 12.3,
      restarts: 0,
      stop: {
        plan: 'TSTP now, TERM at +30.0 s, KILL at +58.0 s, deadline at +60.0 s',
        deadline: new Date(NOW_S * 1000 + 41_250).toISOString(),
        deadlineInSeconds: 41.3,
      },
      redisConnected: true,
      redis: { state: 'up', reason: null, brokenKeys: ['drain-init:stops'] },
      sidekiq: {
        processes: [{ identity: 'pod-1:7:ab12cd34ef56', busy: 1, quiet: false, beatAgeSeconds: 3 }],
        jobsInFlight: 3,
        lastBeatAgeSeconds: 3,
        redisAnswered: true,
      },
    });
  });

  it('says null for the worker once it has exited and for a heartbeat not yet seen', () => {
    const document = statusDocument(
      snapshot({ state: 'exited', childPid: undefined, sidekiq: view({ processes: [], lastBeatEpochS: undefined }) }),
    );
    expect(document).toMatchObject({ state: 'exited', childPid: null, sidekiq: { lastBeatAgeSeconds: null } });
  });
});

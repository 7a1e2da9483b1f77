import { describe, expect, it } from 'vitest';
import { GENERIC_STOP_SETTINGS as GENERIC, SIDEKIQ_STOP_SETTINGS as SIDEKIQ } from '../helpers/fake.js';
import { describePlan, planStop } from '../../src/stop/timeline.js';

const TERM = 15;

describe('planStop', () => {
  it('quiets now, stops at grace - timeout - margin, kills before the deadline', () => {
    const plan = planStop(SIDEKIQ, TERM);
    expect(plan).toEqual({
      quietSignal: 20,
      firstSignalAtMs: 0,
      stopSignal: 15,
      stopAtMs: 30_000,
      killAtMs: 58_000,
      deadlineMs: 60_000,
      warnings: [],
    });
    expect(describePlan(plan)).toBe('TSTP now, TERM at +30.0 s, KILL at +58.0 s, deadline at +60.0 s');
  });

  it.each([
    // grace, timeout, stop margin, kill margin -> stop at, kill at
    [12_000, 3_000, 5_000, 2_000, 4_000, 10_000],
    [30_000, 25_000, 5_000, 2_000, 0, 28_000],
    [600_000, 25_000, 5_000, 2_000, 570_000, 598_000],
    [3_600_000, 3_000_000, 5_000, 10_000, 595_000, 3_590_000],
    [10_000, 0, 0, 0, 10_000, 10_000],
    [1_500, 500, 500, 250, 500, 1_250],
  ])(
    'grace %d, timeout %d, stop margin %d, kill margin %d: TERM at %d, KILL at %d',
    (grace, timeout, stopMargin, killMargin, stopAt, killAt) => {
      const plan = planStop(
        {
          ...SIDEKIQ,
          gracePeriodMs: grace,
          shutdownTimeoutMs: timeout,
          stopMarginMs: stopMargin,
          killMarginMs: killMargin,
        },
        TERM,
      );
      expect(plan.stopAtMs).toBe(stopAt);
      expect(plan.killAtMs).toBe(killAt);
      expect(plan.stopAtMs).toBeLessThanOrEqual(plan.killAtMs);
      expect(plan.killAtMs).toBeLessThanOrEqual(plan.deadlineMs);
    },
  );

  it('sends the stop signal at once with no quiet phase when there is no time for one', () => {
    const plan = planStop({ ...SIDEKIQ, gracePeriodMs: 30_000 }, TERM);
    expect(plan).toMatchObject({ quietSignal: undefined, stopAtMs: 0, killAtMs: 28_000 });
    expect(plan.warnings).toEqual([]);
    expect(describePlan(plan)).toBe('TERM now, KILL at +28.0 s, deadline at +30.0 s');
  });

  it('warns and degrades to TERM at T0 when timeout and margins do not fit', () => {
    const plan = planStop({ ...SIDEKIQ, gracePeriodMs: 10_000 }, TERM);
    expect(plan).toMatchObject({ quietSignal: undefined, stopAtMs: 0, killAtMs: 8_000 });
    expect(plan.warnings).toEqual([
      'shutdown timeout 25s + stop margin 5s do not fit in the grace period 10s: SIGTERM at once; ' +
        'give the platform a grace period of at least 30s (terminationGracePeriodSeconds, ECS stopTimeout, ' +
        'compose stop_grace_period, docker stop -t), or a shorter shutdown timeout',
    ]);
  });

  it('kills at once, with a warning, when the kill margin exceeds the grace period', () => {
    const plan = planStop({ ...GENERIC, gracePeriodMs: 1_000, killMarginMs: 2_000 }, TERM);
    expect(plan).toMatchObject({ stopAtMs: 0, killAtMs: 0 });
    expect(plan.warnings[0]).toContain('kill margin 2s is longer than the grace period 1s');
  });

  it('has no quiet phase for the generic preset: TERM at T0, KILL at the deadline less the margin', () => {
    const plan = planStop(GENERIC, TERM);
    expect(plan).toMatchObject({ quietSignal: undefined, stopAtMs: 0, killAtMs: 58_000 });
    expect(describePlan(plan)).toBe('TERM now, KILL at +58.0 s, deadline at +60.0 s');
  });

  it('sends nothing during the stop delay, then quiets, and counts the delay into what must fit', () => {
    const plan = planStop({ ...SIDEKIQ, stopDelayMs: 5_000 }, TERM);
    expect(plan).toMatchObject({ quietSignal: 20, firstSignalAtMs: 5_000, stopAtMs: 30_000, killAtMs: 58_000 });
    expect(plan.warnings).toEqual([]);
    expect(describePlan(plan)).toBe('TSTP at +5.0 s, TERM at +30.0 s, KILL at +58.0 s, deadline at +60.0 s');

    const late = planStop({ ...SIDEKIQ, gracePeriodMs: 32_000, stopDelayMs: 5_000 }, TERM);
    expect(late).toMatchObject({ quietSignal: undefined, firstSignalAtMs: 5_000, stopAtMs: 5_000, killAtMs: 30_000 });
    expect(late.warnings).toEqual([
      'stop delay 5s + shutdown timeout 25s + stop margin 5s do not fit in the grace period 32s: SIGTERM when the delay ends; ' +
        'give the platform a grace period of at least 35s (terminationGracePeriodSeconds, ECS stopTimeout, ' +
        'compose stop_grace_period, docker stop -t), or a shorter shutdown timeout',
    ]);
    expect(describePlan(late)).toBe('TERM at +5.0 s, KILL at +30.0 s, deadline at +32.0 s');
  });

  it('gives a generic worker its stop signal when the delay ends, and no later than the kill', () => {
    expect(describePlan(planStop({ ...GENERIC, stopDelayMs: 10_000 }, TERM))).toBe(
      'TERM at +10.0 s, KILL at +58.0 s, deadline at +60.0 s',
    );
    const tooLong = planStop({ ...GENERIC, stopDelayMs: 59_000 }, TERM);
    expect(tooLong).toMatchObject({ firstSignalAtMs: 58_000, stopAtMs: 58_000, killAtMs: 58_000 });
    expect(tooLong.warnings).toEqual([
      'stop delay 59s ends after the kill step at +58s: SIGTERM then KILL at once; ' +
        'give the platform a grace period longer than the stop delay, or shorten --stop-delay',
    ]);
  });

  it('uses the configured stop signal', () => {
    expect(describePlan(planStop({ ...GENERIC, stopSignal: 3 }, TERM))).toBe(
      'QUIT now, KILL at +58.0 s, deadline at +60.0 s',
    );
  });
});

import { beforeEach, describe, expect, it } from 'vitest';
import { StopSequence, type StopPhase } from '../../src/stop/sequence.js';
import type { WorkerReport } from '../../src/stop/worker.js';
import type { StopSettings } from '../../src/stop/settings.js';
import { captureLogger, FakeClock, GENERIC_STOP_SETTINGS, SIDEKIQ_STOP_SETTINGS as SIDEKIQ } from '../helpers/fake.js';

const TERM = 15;
const INT = 2;
const TSTP = 20;
const USR1 = 10;

let timers: FakeClock;
let events: string[];
let phases: [StopPhase, number][];
let worker: WorkerReport | undefined;
/** What the worker control's freshReport() answers. */
let freshReport: Promise<void> | undefined;

function sequence(settings: StopSettings = SIDEKIQ) {
  const { log, records } = captureLogger();
  const machine = new StopSequence(
    settings,
    {
      signal: (signal) => events.push(`send ${signal} @${timers.now() - 1_000}`),
      kill: () => events.push(`kill @${timers.now() - 1_000}`),
      keepRunning: () => events.push(`resume @${timers.now() - 1_000}`),
      report: () => worker,
      freshReport: () => freshReport,
    },
    timers,
    log,
  );
  machine.onPhase((phase, _plan, sinceT0Ms) => phases.push([phase, sinceT0Ms]));
  return { machine, records };
}

beforeEach(() => {
  timers = new FakeClock();
  events = [];
  phases = [];
  worker = undefined;
  freshReport = undefined;
});

describe('StopSequence', () => {
  it('leaves every signal but TERM and INT to the forwarder', () => {
    const { machine } = sequence();
    expect(machine.handleSignal(USR1)).toBe(false);
    expect(machine.handleSignal(TSTP)).toBe(false);
    expect(machine.phase).toBe('running');
    expect(events).toEqual([]);
  });

  it('runs quiet, stop (resuming a suspended worker), then kill, each at its time', () => {
    const { machine, records } = sequence();
    expect(machine.handleSignal(TERM)).toBe(true);
    expect(machine.phase).toBe('quieting');
    timers.advance(60_000);
    expect(events).toEqual([`resume @0`, `send ${TSTP} @0`, `send ${TERM} @30000`, `resume @30000`, 'kill @58000']);
    expect(phases).toEqual([
      ['quieting', 0],
      ['stopping', 30_000],
      ['killing', 58_000],
    ]);
    expect(
      records.some(
        (record) => record.msg === 'stop requested: TSTP now, TERM at +30.0 s, KILL at +58.0 s, deadline at +60.0 s',
      ),
    ).toBe(true);
  });

  it('has a suspended worker resumed from the start of the stop, before the quiet signal (a CONT after it could discard it)', () => {
    const { machine } = sequence();
    machine.handleSignal(TERM);
    timers.advance(29_999);
    expect(events).toEqual([`resume @0`, `send ${TSTP} @0`]);
  });

  it('logs and ignores a second SIGTERM', () => {
    const { machine, records } = sequence();
    machine.handleSignal(TERM);
    timers.advance(5_000);
    expect(machine.handleSignal(TERM)).toBe(true);
    expect(machine.phase).toBe('quieting');
    expect(events).toEqual([`resume @0`, `send ${TSTP} @0`]);
    expect(records.some((record) => String(record.msg).includes('ignored, the stop is under way'))).toBe(true);
  });

  it('moves to the next phase on a second SIGINT and kills on a third', () => {
    const { machine } = sequence();
    machine.handleSignal(INT);
    timers.advance(100);
    machine.handleSignal(INT);
    expect(machine.phase).toBe('stopping');
    machine.handleSignal(INT);
    expect(machine.phase).toBe('killing');
    expect(events).toEqual([`resume @0`, `send ${TSTP} @0`, `send ${TERM} @100`, `resume @100`, 'kill @100']);
    timers.advance(60_000);
    expect(events).toHaveLength(5);
  });

  it('stops at once when told the worker is quiet and idle, and keeps the kill time', () => {
    const { machine } = sequence();
    machine.handleSignal(TERM);
    timers.advance(7_000);
    machine.workerIdle();
    expect(machine.phase).toBe('stopping');
    timers.advance(60_000);
    expect(events).toEqual([`resume @0`, `send ${TSTP} @0`, `send ${TERM} @7000`, `resume @7000`, 'kill @58000']);
  });

  it('ignores workerIdle before a stop was requested', () => {
    const { machine } = sequence();
    machine.workerIdle();
    expect(machine.phase).toBe('running');
    expect(events).toEqual([]);
  });

  it('cancels every timer when the child exits', () => {
    const { machine } = sequence();
    machine.handleSignal(TERM);
    machine.finish();
    expect(timers.pending).toBe(0);
    timers.advance(120_000);
    expect(events).toEqual([`resume @0`, `send ${TSTP} @0`]);
  });

  it('leaves every signal to the forwarder once the child has exited', () => {
    const { machine } = sequence();
    machine.finish();
    expect(machine.handleSignal(TERM)).toBe(false);
    expect(machine.handleSignal(INT)).toBe(false);
    expect(machine.phase).toBe('running');
    expect(events).toEqual([]);
  });

  it('tells when the kill step is due once a stop has begun', () => {
    const { machine } = sequence();
    expect(machine.killAt).toBeUndefined();
    timers.advance(500);
    machine.handleSignal(TERM);
    expect(machine.killAt).toBe(1_500 + 58_000);
  });

  it('quiets a registered worker, naming its jobs in flight in each step of the log', () => {
    worker = { registered: true, jobsInFlight: 3 };
    const { machine, records } = sequence();
    machine.handleSignal(TERM);
    expect(machine.phase).toBe('quieting');
    worker = { registered: true, jobsInFlight: 1 };
    timers.advance(60_000);
    expect(events).toEqual([`resume @0`, `send ${TSTP} @0`, `send ${TERM} @30000`, `resume @30000`, 'kill @58000']);
    const jobs = (msg: string): unknown => records.find((record) => String(record.msg).startsWith(msg))?.jobsInFlight;
    expect([jobs('stop requested'), jobs('sent stop signal'), jobs('the worker is still running')]).toEqual([3, 1, 1]);
  });

  it('stops at once a worker that has not registered with Sidekiq yet: it could not handle the quiet signal', () => {
    worker = { registered: false, jobsInFlight: 0 };
    const { machine, records } = sequence();
    machine.handleSignal(TERM);
    expect(machine.phase).toBe('stopping');
    timers.advance(60_000);
    expect(events).toEqual([`resume @0`, `send ${TERM} @0`, `resume @0`, 'kill @58000']);
    expect(records.some((record) => String(record.msg).includes('has not registered with Sidekiq yet'))).toBe(true);
  });

  it('plans the stop once the worker was read afresh, counting from when the signal came', async () => {
    let readAfresh: () => void = () => {};
    freshReport = new Promise((resolve) => (readAfresh = resolve));
    const { machine, records } = sequence();
    expect(machine.handleSignal(TERM)).toBe(true);
    expect(machine.handleSignal(TERM)).toBe(true);
    expect(machine.phase).toBe('running');
    timers.advance(200);
    readAfresh();
    await freshReport;
    await Promise.resolve();
    expect(machine.phase).toBe('quieting');
    timers.advance(60_000);
    expect(events).toEqual([`resume @200`, `send ${TSTP} @200`, `send ${TERM} @30000`, `resume @30000`, 'kill @58000']);
    expect(records.filter((record) => String(record.msg).startsWith('stop requested'))).toHaveLength(1);
  });

  it('keeps the quiet phase when it is not known whether the worker registered', () => {
    const { machine, records } = sequence();
    machine.handleSignal(TERM);
    expect(machine.phase).toBe('quieting');
    expect(records.find((record) => String(record.msg).startsWith('stop requested'))).not.toHaveProperty(
      'jobsInFlight',
    );
  });

  it('takes new settings while running, and none once the stop has begun', () => {
    const generic: StopSettings = {
      ...SIDEKIQ,
      preset: 'generic',
      quietSignal: undefined,
      shutdownTimeoutMs: 0,
      stopMarginMs: 0,
    };
    const { machine } = sequence(generic);
    machine.useSettings(SIDEKIQ);
    machine.handleSignal(TERM);
    machine.useSettings(generic);
    timers.advance(60_000);
    expect(events).toEqual([`resume @0`, `send ${TSTP} @0`, `send ${TERM} @30000`, `resume @30000`, 'kill @58000']);
  });

  it('sends TERM at T0 and KILL before the deadline for the generic preset', () => {
    const { machine } = sequence({
      ...SIDEKIQ,
      preset: 'generic',
      quietSignal: undefined,
      shutdownTimeoutMs: 0,
      stopMarginMs: 0,
      gracePeriodMs: 10_000,
    });
    machine.handleSignal(TERM);
    expect(machine.phase).toBe('stopping');
    timers.advance(10_000);
    expect(events).toEqual([`resume @0`, `send ${TERM} @0`, `resume @0`, 'kill @8000']);
    expect(events.some((event) => event.startsWith(`send ${TSTP}`))).toBe(false);
  });

  describe('the stop signal', () => {
    const GENERIC: StopSettings = { ...GENERIC_STOP_SETTINGS, stopSignal: 'received' };

    it('is the signal the platform sent for the generic preset: a SIGINT reaches the worker as SIGINT, as under tini', () => {
      const { machine, records } = sequence(GENERIC);
      machine.handleSignal(INT);
      expect(events).toEqual([`resume @0`, `send ${INT} @0`, `resume @0`]);
      expect(records.find((record) => String(record.msg).startsWith('stop requested'))?.msg).toBe(
        'stop requested: INT now, KILL at +58.0 s, deadline at +60.0 s',
      );
    });

    it('is TERM for a SIGTERM, and what --stop-signal or the Sidekiq preset names for either', () => {
      sequence(GENERIC).machine.handleSignal(TERM);
      sequence({ ...GENERIC, stopSignal: USR1 }).machine.handleSignal(INT);
      sequence({ ...SIDEKIQ, quietSignal: undefined }).machine.handleSignal(INT);
      expect(events.filter((event) => event.startsWith('send'))).toEqual([
        `send ${TERM} @0`,
        `send ${USR1} @0`,
        `send ${TERM} @0`,
      ]);
    });
  });
});

describe('StopSequence with a stop delay', () => {
  const DELAYED: StopSettings = { ...SIDEKIQ, stopDelayMs: 5_000 };

  it('sends nothing during the delay, then quiets, stops and kills at the plan times', () => {
    const { machine, records } = sequence(DELAYED);
    let stopRequested = 0;
    machine.onStopRequested(() => stopRequested++);
    machine.handleSignal(TERM);
    expect(machine.phase).toBe('delaying');
    expect(machine.stopRequested).toBe(true);
    expect(stopRequested).toBe(1);
    timers.advance(4_999);
    expect(events).toEqual([]);
    timers.advance(60_000);
    expect(events).toEqual([
      `resume @5000`,
      `send ${TSTP} @5000`,
      `send ${TERM} @30000`,
      `resume @30000`,
      'kill @58000',
    ]);
    expect(phases).toEqual([
      ['delaying', 0],
      ['quieting', 5_000],
      ['stopping', 30_000],
      ['killing', 58_000],
    ]);
    expect(
      records.some((record) => String(record.msg).startsWith('stop requested: TSTP at +5.0 s, TERM at +30.0 s')),
    ).toBe(true);
  });

  it('ends the delay on a second SIGINT', () => {
    const { machine } = sequence(DELAYED);
    machine.handleSignal(INT);
    timers.advance(1_000);
    machine.handleSignal(INT);
    expect(machine.phase).toBe('quieting');
    timers.advance(10_000);
    expect(events).toEqual([`resume @1000`, `send ${TSTP} @1000`]);
  });
});

describe('StopSequence restarting the worker', () => {
  it('stops the worker at its plan without the stop delay, and is running again once the new one started', () => {
    const { machine, records } = sequence({ ...SIDEKIQ, stopDelayMs: 5_000 });
    machine.restart(1);
    expect(machine.phase).toBe('quieting');
    expect(machine.restarting).toBe(true);
    expect(machine.stopRequested).toBe(false);
    timers.advance(30_000);
    expect(events).toEqual([`resume @0`, `send ${TSTP} @0`, `send ${TERM} @30000`, `resume @30000`]);
    machine.restarted();
    expect(machine.phase).toBe('running');
    expect(machine.restarting).toBe(false);
    // No timer of the old worker's stop is left: no kill at +58 s.
    timers.advance(60_000);
    expect(events).toHaveLength(4);
    expect(
      records.some((record) => String(record.msg).startsWith('restart requested: TSTP now, TERM at +30.0 s')),
    ).toBe(true);
    // The next platform stop is planned afresh.
    machine.handleSignal(TERM);
    expect(machine.phase).toBe('delaying');
  });

  it('becomes the stop when the platform sends SIGTERM during a restart, and ignores a restart during a stop', () => {
    const { machine, records } = sequence();
    let stopRequested = 0;
    machine.onStopRequested(() => stopRequested++);
    machine.restart(1);
    timers.advance(1_000);
    machine.handleSignal(TERM);
    expect(machine.stopRequested).toBe(true);
    expect(machine.restarting).toBe(false);
    expect(stopRequested).toBe(1);
    // The plan goes on: it ends within the platform's deadline, which came later.
    expect(machine.phase).toBe('quieting');
    machine.restart(1);
    expect(records.some((record) => String(record.msg).includes('ignored, a stop is under way'))).toBe(true);
    timers.advance(60_000);
    expect(events).toEqual([`resume @0`, `send ${TSTP} @0`, `send ${TERM} @30000`, `resume @30000`, 'kill @58000']);
  });
});

// What drain-init does before the rest of it is loaded: the host's set-up, the signal handlers (what they
// hear is held until the stop sequence takes over), the reaper and, without a Redis URL, the worker's start. The
// worker so never waits for the code it does not need: the supervisor, the probe endpoint, the logger
// itself are loaded once it runs. With a Redis URL the worker starts once drain-init's Redis parts are up
// (its record, and the Redis endpoint whose address the worker is given).
import type { Config } from '../config/parse.js';
import { systemClock, type Clock } from '../lib/clock.js';
import type { Logger } from '../log/logger.js';
import { spawnChild, type Child } from '../process/child.js';
import { SignalForwarder } from '../process/forward.js';
import { ZombieReaper } from '../process/reaper.js';
import { startsStop } from '../stop/sequence.js';
import { prepareHost, type Host } from './host.js';
import { startWorker, type StartedWorker } from './run.js';

const STDIN = 0;

export interface EarlyStart {
  readonly host: Host;
  /** Installed: the signals it hears wait for its takeOver. */
  readonly forwarder: SignalForwarder;
  /** Started; it leaves to Node the worker the forwarder is attached to. Undefined without the addon. */
  readonly reaper: ZombieReaper | undefined;
  /** The first worker, started already; undefined when it waits for drain-init's Redis parts. */
  readonly first: StartedWorker | undefined;
  /**
   * Starts a worker as the platform sees it: with the terminal when drain-init holds it, the OOM score
   * drain-init was given, and the variables `env` sets (the Redis endpoint's address).
   */
  spawn(env?: Readonly<Record<string, string>>): Child;
}

export function startEarly(config: Config, log: Logger, clock: Clock = systemClock): EarlyStart {
  const host = prepareHost(config, clock, log);
  const forwarder = new SignalForwarder(
    { rewrite: config.rewrite, processGroup: config.processGroup, native: host.addon },
    log,
  );
  forwarder.install((signal) => startsStop(signal) || signal === config.restartSignal);
  // Before any spawn: the SIGCHLD handler reaps only while it has counted every fork since it was set up.
  const reaper =
    host.addon === undefined
      ? undefined
      : new ZombieReaper(host.addon, log, () => (forwarder.childPid === undefined ? [] : [forwarder.childPid]));
  reaper?.start();
  const first = config.redis === undefined ? startWorker(() => spawnWorker(config, host), clock) : undefined;
  if (first !== undefined) forwarder.attach(first.child.pid);
  return { host, forwarder, reaper, first, spawn: (env) => spawnWorker(config, host, env) };
}

function spawnWorker(config: Config, host: Host, env?: Readonly<Record<string, string>>): Child {
  const spawn = (): Child => spawnChild(config.command, config.args, host.addon?.ownsTerminal(STDIN) ?? false, env);
  return host.oomProtection === undefined ? spawn() : host.oomProtection.spawning(spawn);
}

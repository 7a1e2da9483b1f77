// drain-init's Redis endpoint for a Sidekiq worker, assembled: the relay with the Sidekiq hooks, the watch
// on the queues that lets a waiting fetch end at a push, and the worker's URL variable pointed at it.
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../log/logger.js';
import { processTree } from '../process/proc.js';
import { socketOwner } from '../process/socket-owner.js';
import { connectionName } from '../record/schema.js';
import { recoveryKeys } from '../recovery/keys.js';
import { watchKeys } from '../redis/key-changes.js';
import { startRelay } from '../redis/relay.js';
import type { RedisEndpoint } from '../redis/url.js';
import { sidekiqEndpointHooks } from '../sidekiq/endpoint.js';
import type { FetchTarget } from '../sidekiq/fetch.js';
import { pointedAtEndpoint, type EndpointPlan } from '../sidekiq/worker-url.js';
import type { RedisParts } from './redis-parts.js';

export interface Endpoint {
  /** The worker's environment: its Redis URL variable, pointed at the endpoint. */
  readonly env: Readonly<Record<string, string>>;
  close(): Promise<void>;
}

export interface EndpointContext {
  readonly redis: RedisEndpoint;
  readonly prefix: string;
  readonly parts: RedisParts;
  /** The hostname Sidekiq writes for this host's processes. */
  readonly hostname: string;
  readonly childPid: () => number | undefined;
  readonly clock: Clock;
  readonly log: Logger;
}

/** Starts the endpoint; undefined (with a warning) when it cannot listen: the worker then talks to Redis itself. */
export async function startEndpoint(
  plan: Extract<EndpointPlan, { kind: 'relay' }>,
  context: EndpointContext,
): Promise<Endpoint | undefined> {
  const { parts, clock, log } = context;
  let target: FetchTarget | undefined;
  void parts.claimed.then((claim) => {
    if (claim === undefined) return;
    const keys = recoveryKeys(context.prefix, claim.instanceId);
    target = {
      record: keys.jobs,
      index: keys.index,
      instance: keys.instance,
      instanceId: claim.instanceId,
      token: parts.token,
      sidekiq: parts.sidekiq,
    };
  });
  const changes = watchKeys(context.redis, `${connectionName(parts.token)}:queues`, clock, log);
  const hooks = sidekiqEndpointHooks({
    keys: parts.sidekiq,
    target: () => target,
    record: () => parts.guard(),
    processOf: (connection) => {
      const child = context.childPid();
      const { workerPort, relayPort } = connection;
      if (child === undefined || workerPort === undefined || relayPort === undefined) return undefined;
      return socketOwner(workerPort, relayPort, processTree(child));
    },
    hostname: context.hostname,
    changes,
    runScript: (script, keys, args) => script.run(parts.connection.client, keys, args),
    clock,
    log,
  });
  let relay;
  try {
    relay = await startRelay({ upstream: context.redis, log, hooks, clock });
  } catch (error) {
    changes.close();
    log.warn(
      { err: (error as Error).message },
      'the Redis endpoint could not listen: the worker talks to Redis itself, its jobs mirrored from its heartbeats',
    );
    return undefined;
  }
  const port = relay.port ?? 0;
  log.info(
    { port, variable: plan.variable },
    `Redis endpoint for the worker on 127.0.0.1:${port}: each job is recorded as it leaves its queue`,
  );
  return {
    env: { [plan.variable]: pointedAtEndpoint(plan.workerUrl, port) },
    async close() {
      hooks.close();
      changes.close();
      await relay.close();
    },
  };
}

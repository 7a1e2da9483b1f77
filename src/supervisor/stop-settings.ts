// Where the stop settings come from, as the worker's life goes on: the options, the worker's command
// line (and, with the auto preset, its registering as a Sidekiq process), and the platform's grace period,
// its default at once and what its API says once the worker has started. Each change is logged with the
// plan, and a plan that does not fit is a warning at once, not only at the stop.
import { hostname } from 'node:os';
import { formatDuration } from '../config/duration.js';
import type { Config } from '../config/parse.js';
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../log/logger.js';
import { detectGracePeriod, systemHost, type GraceDetection } from '../platform/grace.js';
import { parseSignal } from '../process/signals.js';
import { readSidekiqHints } from '../sidekiq/command-line.js';
import {
  presetLearnsSidekiq,
  resolveStopSettings,
  type GracePeriod,
  type StopSettings,
  type WorkerHints,
} from '../stop/settings.js';
import { describePlan, planStop } from '../stop/timeline.js';

const SIGTERM = parseSignal('TERM');

export class StopSettingsSource {
  #settings: StopSettings;
  #hints: WorkerHints;
  #grace: GracePeriod;
  readonly #platform: GraceDetection | undefined;
  #platformAsked = false;

  constructor(
    private readonly config: Config,
    private readonly log: Logger,
    clock: Clock,
  ) {
    this.#platform =
      config.gracePeriodMs === undefined ? detectGracePeriod(systemHost(process.env, hostname()), clock) : undefined;
    this.#grace = this.#platform?.now ?? { ms: config.gracePeriodMs ?? 0, source: '--grace-period' };
    this.#hints = readSidekiqHints(config.command, config.args, log);
    this.#settings = this.#resolve('stop settings');
  }

  get settings(): StopSettings {
    return this.#settings;
  }

  /** The child registered as a Sidekiq process: true when the settings changed (the auto preset learnt it). */
  learnSidekiq(): boolean {
    if (!presetLearnsSidekiq(this.config, this.#settings)) return false;
    this.#hints = readSidekiqHints(this.config.command, this.config.args, this.log, true);
    this.#settings = this.#resolve('the child registered as a Sidekiq process: stop settings now');
    return true;
  }

  /**
   * Asks the platform's API, the first time the worker has started (loading node:https and the request
   * must not hold up the start), and calls `changed` with the new settings when its answer changes them.
   * `stopBegun` tells whether it came too late: a stop under way keeps its plan.
   */
  readPlatform(stopBegun: () => boolean, changed: (settings: StopSettings) => void): void {
    const platform = this.#platform;
    const read = platform?.read;
    if (platform === undefined || read === undefined || this.#platformAsked) return;
    this.#platformAsked = true;
    void read().then((said) => {
      if (said.warning !== undefined)
        this.log.warn(
          { platform: platform.platform, reason: said.warning },
          `could not read the grace period from ${platform.platform}: ${said.source} ${formatDuration(said.ms)} applies; set --grace-period (DRAIN_INIT_GRACE_PERIOD) to the platform's`,
        );
      if (said.ms === this.#grace.ms && said.source === this.#grace.source) return;
      this.#grace = said;
      if (stopBegun()) {
        this.log.info(
          { gracePeriodSource: said.source },
          "the platform's grace period came after the stop began: the stop goes on as planned",
        );
        return;
      }
      this.#settings = this.#resolve("the platform's grace period: stop settings now");
      changed(this.#settings);
    });
  }

  #resolve(message: string): StopSettings {
    const settings = resolveStopSettings(this.config, this.#hints, this.#grace);
    const plan = planStop(settings, SIGTERM);
    this.log.info(
      {
        preset: settings.preset,
        gracePeriod: formatDuration(settings.gracePeriodMs),
        gracePeriodSource: settings.gracePeriodSource,
        ...(this.config.gracePeriodMs === undefined
          ? { gracePeriodSetBy: '--grace-period, DRAIN_INIT_GRACE_PERIOD' }
          : {}),
        ...(settings.stopDelayMs === 0 ? {} : { stopDelay: formatDuration(settings.stopDelayMs) }),
        shutdownTimeout: formatDuration(settings.shutdownTimeoutMs),
        shutdownTimeoutSource: settings.shutdownTimeoutSource,
        plan: describePlan(plan),
      },
      message,
    );
    for (const warning of plan.warnings)
      this.log.warn({ preset: settings.preset }, `the stop plan does not fit: ${warning}`);
    return settings;
  }
}

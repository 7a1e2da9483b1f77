import { isatty } from 'node:tty';
import { ConfigError, parseConfig } from './config/parse.js';
import { helpText } from './config/help.js';
import { DeferredLogger } from './log/deferred.js';
import { loggingFor } from './log/logger.js';
import { prepareSpawning } from './process/child.js';
import { startEarly } from './supervisor/early.js';
import { VERSION } from './version.js';

// Only what starts the worker is loaded before it starts (supervisor/early.ts); the logger and the
// supervisor (rest.ts) are loaded by the dynamic import below, which runs once the worker runs.
async function main(argv: readonly string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseConfig(argv, process.env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`drain-init: ${error.message}\n`);
    return 2;
  }
  if (parsed.kind === 'help') {
    process.stdout.write(helpText());
    return 0;
  }
  if (parsed.kind === 'version') {
    process.stdout.write(`drain-init ${VERSION}\n`);
    return 0;
  }
  const { config } = parsed;
  const { level, format } = loggingFor(config, isatty(2));
  const log = new DeferredLogger();
  const rest = import('./rest.js');
  const logReady = rest.then(({ createLogger }) => log.ready((now) => createLogger(level, format, now)));
  try {
    log.info(
      { version: VERSION, program: config.command, pid1: process.pid === 1, execArgv: process.execArgv },
      'drain-init starting',
    );
    for (const notice of config.notices) log.warn(notice);
    prepareSpawning(log);
    const early = startEarly(config, log);
    const { supervise } = await rest;
    return await supervise(config, log, early);
  } finally {
    // No line is lost, whatever happened: the held ones are written before drain-init exits.
    await logReady;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(
      `drain-init: internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exit(1);
  },
);

import { isatty } from 'node:tty';
import { ConfigError, parseConfig } from './config/parse.js';
import { helpText } from './config/help.js';
import { createLogger, loggingFor } from './log/logger.js';
import { prepareSpawning } from './process/child.js';
import { supervise } from './supervisor/supervise.js';
import { VERSION } from './version.js';

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
  const log = createLogger(level, format);
  log.info({ version: VERSION, program: config.command, pid1: process.pid === 1 }, 'drain-init starting');
  for (const notice of config.notices) log.warn(notice);
  prepareSpawning(log);
  return supervise(config, log);
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

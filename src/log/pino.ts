// The logger itself: pino, writing each line to stderr at once. Loaded once the worker has started, so
// the worker's start never waits for it (the deferred logger in logger.ts holds the lines until then).
import { pino, type DestinationStream } from 'pino';
import { prettyLine, type LogFormat, type Logger, type LogLevel } from './logger.js';

/** Writes each line to stderr at once, so no line is lost when drain-init exits right after. */
function stderrDestination(format: LogFormat): DestinationStream {
  const sink = pino.destination({ dest: 2, sync: true });
  return format === 'pretty' ? { write: (line: string) => sink.write(prettyLine(line)) } : sink;
}

/** `now` gives each line its time, in ms since the epoch. */
export function createLogger(level: LogLevel, format: LogFormat, now: () => number = Date.now): Logger {
  return pino(
    { name: 'drain-init', level, base: { pid: process.pid }, timestamp: () => `,"time":${now()}` },
    stderrDestination(format),
  );
}

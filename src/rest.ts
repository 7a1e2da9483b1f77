// What drain-init loads once the worker runs (cli.ts): the supervisor and the logger. The release
// executables carry it as a script of its own, compiled only then (release-rest.ts).
export { supervise } from './supervisor/supervise.js';
export { createLogger } from './log/pino.js';

// The entry point of the release executables (scripts/build/binary.ts): the launcher's handoff is taken
// before any other module runs, so nothing spawned ever sees it, then the CLI.
import './native/take-handoff.js';
import './cli.js';

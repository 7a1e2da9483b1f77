// The entry point of the release executables (scripts/build/binary.ts). The launcher's handoff is taken
// before any other module runs (take-handoff.js comes first), so nothing spawned ever sees it; then the
// CLI runs. Built into a V8 start-up snapshot, every module is evaluated at build time, and this takes
// the handoff and runs the CLI at start.
import './take-handoff.js';
import { startupSnapshot } from 'node:v8';
import { runCli } from '../cli.js';
import { takeHandoff } from './handoff.js';

if (startupSnapshot.isBuildingSnapshot())
  startupSnapshot.setDeserializeMainFunction(() => {
    takeHandoff();
    runCli();
  });

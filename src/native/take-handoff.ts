import { startupSnapshot } from 'node:v8';
import { takeHandoff } from './handoff.js';

// In a start-up snapshot, the build's own environment has no handoff: release-main.ts takes it at start.
if (!startupSnapshot.isBuildingSnapshot()) takeHandoff();

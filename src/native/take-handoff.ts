import { takeHandoff } from './handoff.js';

takeHandoff();

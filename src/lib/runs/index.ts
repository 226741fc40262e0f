/** Runs: the step machine of DESIGN.md (domain only; adapters live in src/lib/state). */

export type { CallOptions, ReceivedWork, RunQuery, RunStore, WorkMessage, WorkQueue } from '../ports/runs';
export * from './engine';
export type { RetryPolicy, StepResult } from './rules';
export * from './types';

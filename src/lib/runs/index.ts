/** Runs: the step machine of DESIGN.md (domain only; adapters live in src/lib/state). */
export * from './engine';
export type { CallOptions, ReceivedWork, RunQuery, RunStore, WorkMessage, WorkQueue } from './ports';
export type { RetryPolicy, StepResult } from './rules';
export * from './types';

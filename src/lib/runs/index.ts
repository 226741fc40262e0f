/** Runs: the step machine of decision 0002 (domain only; adapters live in src/lib/state). */

export type {
  ActiveRunEntry,
  CallOptions,
  ReceivedWork,
  RunQuery,
  RunStore,
  TargetLock,
  WorkMessage,
  WorkQueue,
} from '../ports/runs';
export * from './engine';
export type { RegisteredKind } from './kinds';
export { MAX_RUN_BODY_BYTES, parseRunBody, parseRunId } from './requests';
export type { RetryPolicy, StepResult } from './rules';
export * from './types';
export { describeRun, type RunView } from './view';
export { handleWorkMessage, messageOwner } from './worker';

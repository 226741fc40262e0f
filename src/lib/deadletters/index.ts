/** Dead-lettered messages: arrival and archive, triage and alerts, the operator's actions, replays. */
import type { MetricsReader } from '../ports/monitoring';
import type { ArrivalDeps } from './arrive';

/** Everything the dead-letter functions need (`AppDeps.deadLetters(logger)`). */
export interface DeadLetterDeps extends ArrivalDeps {
  metrics: MetricsReader;
}

export { type ArrivalResult, handleArrivals, type TriggeredMessage, triggeredMessages } from './arrive';

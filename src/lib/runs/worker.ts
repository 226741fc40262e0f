/**
 * What the queue trigger does with one work message, as a function of the engine: the real
 * `runWorker` (src/functions/runs.ts) calls it, and so do the tests and the chaos harness.
 */
import { isRetryable, ValidationError } from '../core/errors';
import { describeError, type Logger } from '../core/logging';
import type { AdvanceOutcome, RunEngine } from './engine';
import { parseWorkMessage } from './messages';

/** The delivery of a work message, as the queue trigger's metadata describes it. */
export interface WorkDelivery {
  /** The queue message id (trigger metadata `id`): the same on every redelivery of the message. */
  messageId?: string;
  /** The invocation id: only used when the host gives no message id. */
  invocationId: string;
}

/**
 * The lease owner of a delivery: the message and the ticket it carries, not the invocation. A
 * redelivery of the same message (after a transient failure of a lease or result write) takes its
 * own lease back instead of finding the run busy; another message (a duplicate copy, a resume)
 * never shares it.
 */
export function messageOwner(delivery: WorkDelivery, ticket: number | undefined): string {
  const message = delivery.messageId ? `msg:${delivery.messageId}` : `inv:${delivery.invocationId}`;
  return `${message}:${ticket ?? '*'}`;
}

/**
 * Advances the run a work message names. A malformed message is logged and settled (it would fail
 * forever); retryable failures are rethrown so the message becomes visible again and, after
 * `maxDequeueCount` attempts, lands on the poison queue; anything else is logged and settled.
 * Returns the outcome, or `undefined` when the message was settled without one.
 */
export async function handleWorkMessage(
  engine: RunEngine,
  body: unknown,
  delivery: WorkDelivery,
  logger: Logger,
): Promise<AdvanceOutcome | undefined> {
  let work: ReturnType<typeof parseWorkMessage>;
  try {
    work = parseWorkMessage(body);
  } catch (error) {
    if (error instanceof ValidationError) {
      logger.error('malformed work message settled', { problems: error.problems });
      return undefined;
    }
    throw error;
  }
  try {
    const outcome = await engine.advanceRun(work.runId, {
      owner: messageOwner(delivery, work.ticket),
      ticket: work.ticket,
    });
    logger.info('run advanced', {
      runId: work.runId,
      status: outcome.status,
      step: outcome.step ?? null,
      decision: outcome.decision ?? null,
      state: outcome.run?.state ?? null,
    });
    return outcome;
  } catch (error) {
    if (isRetryable(error)) throw error;
    logger.error('run step failed and will not be retried', {
      runId: work.runId,
      error: describeError(error),
    });
    return undefined;
  }
}

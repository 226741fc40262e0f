import { app, type InvocationContext, type Timer } from '@azure/functions';
import { getDeps } from '../lib/app/deps';
import { handleWorkMessage } from '../lib/runs';
import { invocationLogger } from './invocation';

/**
 * Advances one run by one step per work message (`handleWorkMessage`). The lease owner is the
 * queue message (its id, from the trigger metadata) and its ticket, so a redelivery of the same
 * message takes its own lease back. Retryable failures are rethrown: the message becomes visible
 * again and, after `maxDequeueCount` attempts, lands on the poison queue.
 */
export async function runWorker(message: unknown, context: InvocationContext): Promise<void> {
  const deps = getDeps();
  const logger = invocationLogger(context, 'runWorker');
  // A failure to load the Storage SDKs is retried like any infrastructure failure.
  await deps.load();
  await handleWorkMessage(
    deps.runs(logger),
    message,
    { messageId: queueMessageId(context), invocationId: context.invocationId },
    logger,
  );
}

/**
 * The safety net of the step machine: reads the index of active runs (from where the last tick
 * stopped, a bounded number per tick), re-sends the message of runs whose worker died or whose
 * message was lost, flushes outboxes left behind and drops finished runs from the index. The
 * Functions host runs a timer function as a singleton, and the work is safe even without that.
 */
export async function resumeRuns(_timer: Timer, context: InvocationContext): Promise<void> {
  const deps = getDeps();
  const logger = invocationLogger(context, 'resumeRuns');
  await deps.ready();
  const result = await deps.runs(logger).resumeStalledRuns();
  const fields = {
    visited: result.visited,
    resumed: result.resumed,
    failed: result.failed,
    finished: result.finished.length,
    errors: result.errors,
    more: result.more,
  };
  if (result.errors.length > 0) logger.warn('resume sweep done with errors', fields);
  else if (result.resumed.length > 0 || result.failed.length > 0) logger.info('stalled runs resumed', fields);
}

/** The queue message id the host passes in the trigger metadata (`Id`, camel-cased by the library). */
function queueMessageId(context: InvocationContext): string | undefined {
  const metadata = (context.triggerMetadata ?? {}) as Record<string, unknown>;
  const id = metadata.id ?? metadata.Id;
  return typeof id === 'string' && id !== '' ? id : undefined;
}

app.storageQueue('runWorker', {
  queueName: getDeps().settings.workQueueName,
  connection: 'AzureWebJobsStorage',
  handler: runWorker,
});

app.timer('resumeRuns', { schedule: '0 */5 * * * *', handler: resumeRuns });

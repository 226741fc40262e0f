import { app, type InvocationContext, type Timer } from '@azure/functions';
import { getDeps } from '../lib/app/deps';
import { isRetryable, ValidationError } from '../lib/core/errors';
import { describeError } from '../lib/core/logging';
import { parseWorkMessage } from '../lib/runs';
import { invocationLogger } from './invocation';

/**
 * Advances one run by one step per work message. A malformed message is logged and settled (it
 * would fail forever); retryable failures are rethrown so the message becomes visible again and,
 * after `maxDequeueCount` attempts, lands on the poison queue.
 */
export async function runWorker(message: unknown, context: InvocationContext): Promise<void> {
  const deps = getDeps();
  const logger = invocationLogger(context, 'runWorker');
  let work: ReturnType<typeof parseWorkMessage>;
  try {
    work = parseWorkMessage(message);
  } catch (error) {
    if (error instanceof ValidationError) {
      logger.error('malformed work message settled', { problems: error.problems });
      return;
    }
    throw error;
  }
  // Outside the try: a failure to load the Storage SDKs is retried like any infrastructure failure.
  await deps.load();
  try {
    const outcome = await deps.runs(logger).advanceRun(work.runId, {
      owner: context.invocationId,
      ticket: work.ticket,
    });
    logger.info('run advanced', { runId: work.runId, outcome });
  } catch (error) {
    if (isRetryable(error)) throw error;
    logger.error('run step failed and will not be retried', {
      runId: work.runId,
      error: describeError(error),
    });
  }
}

/**
 * The safety net of the step machine: re-enqueues runs whose worker died (lease expired) or whose
 * next message was lost. The Functions host runs a timer function as a singleton (one instance at a
 * time across the app), and the work is safe even without that.
 */
export async function resumeRuns(_timer: Timer, context: InvocationContext): Promise<void> {
  const deps = getDeps();
  const logger = invocationLogger(context, 'resumeRuns');
  await deps.ready();
  const { resumed, failed } = await deps.runs(logger).resumeStalledRuns();
  if (resumed.length > 0 || failed.length > 0) logger.info('stalled runs resumed', { resumed, failed });
}

app.storageQueue('runWorker', {
  queueName: getDeps().settings.workQueueName,
  connection: 'AzureWebJobsStorage',
  handler: runWorker,
});

app.timer('resumeRuns', { schedule: '0 */5 * * * *', handler: resumeRuns });

import { app, type InvocationContext, type Timer } from '@azure/functions';
import { getDeps } from '../lib/app/deps';
import { reportDeadLetters } from '../lib/deadletters/report';
import { invocationLogger } from './invocation';

/**
 * The dead-letter report, on the policy's `schedules.deadLetterReport`: depth and growth of every
 * entity's dead-letter queue (Azure Monitor) and what the archive took in; alerts the rate limit
 * held back go out when due. Registered only when the policy names dead-letter entities.
 */
export async function deadLetterReport(_timer: Timer, context: InvocationContext): Promise<void> {
  const deps = getDeps();
  const logger = invocationLogger(context, 'deadLetterReport');
  await deps.ready();
  await reportDeadLetters(deps.deadLetters(logger), { correlationId: context.invocationId });
}

if (getDeps().policy.deadLetters.length > 0) {
  app.timer('deadLetterReport', {
    schedule: getDeps().policy.schedules.deadLetterReport,
    handler: deadLetterReport,
  });
}

import { app, type EventGridEvent, type InvocationContext } from '@azure/functions';
import { getDeps } from '../lib/app/deps';
import { isRetryable, ValidationError } from '../lib/core/errors';
import { handleSecretEvent, recordRejectedEvent } from '../lib/rotation/handleSecretEvent';
import { parseSecretEvent } from '../lib/rotation/keyVaultEvent';
import { invocationLogger } from './invocation';

/**
 * Key Vault secret lifecycle events from an Event Grid subscription (either schema). Invalid or
 * unhandled events are recorded and settled; retryable failures are rethrown so the host answers
 * Event Grid with an error and Event Grid redelivers.
 */
export async function keyVaultEvents(event: EventGridEvent, context: InvocationContext): Promise<void> {
  const deps = getDeps();
  const logger = invocationLogger(context, 'keyVaultEvents');
  await deps.ready();
  const ctx = {
    actor: 'system:eventgrid',
    correlationId: context.invocationId,
    attemptId: context.invocationId,
  };
  let parsed: ReturnType<typeof parseSecretEvent>;
  try {
    parsed = parseSecretEvent(event);
  } catch (error) {
    if (error instanceof ValidationError) {
      await recordRejectedEvent(
        event,
        error,
        { audit: deps.state.audit, clock: deps.platform.clock, logger },
        ctx,
      );
      return;
    }
    throw error;
  }
  try {
    await handleSecretEvent(parsed, deps.secretEventDeps(logger), ctx);
  } catch (error) {
    if (isRetryable(error)) throw error;
    logger.error('secret event failed and will not be retried', {
      target: parsed.secretName,
      error: error instanceof Error ? error.message : String(error),
    });
  }
}

app.eventGrid('keyVaultEvents', { handler: keyVaultEvents });

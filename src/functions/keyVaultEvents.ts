import { app, type EventGridEvent, type InvocationContext } from '@azure/functions';
import { getDeps } from '../lib/app/deps';
import { isRetryable, ValidationError } from '../lib/core/errors';
import { describeError } from '../lib/core/logging';
import { handleSecretEvent, recordRejectedEvent } from '../lib/rotation/handleSecretEvent';
import { parseSecretEvent } from '../lib/rotation/keyVaultEvent';
import { invocationLogger } from './invocation';

/**
 * Key Vault secret lifecycle events from an Event Grid subscription (either schema). Invalid or
 * unhandled events, and events naming a vault the app may not call, are counted as rejections and
 * settled; retryable failures are rethrown so the host answers Event Grid with an error and Event
 * Grid redelivers; anything else (a bug, access denied) is audited once and settled.
 */
export async function keyVaultEvents(event: EventGridEvent, context: InvocationContext): Promise<void> {
  const deps = getDeps();
  const logger = invocationLogger(context, 'keyVaultEvents');
  await deps.ready();
  const secretEvents = deps.secretEvents(logger);
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
      await recordRejectedEvent(event, error, secretEvents, ctx);
      return;
    }
    throw error;
  }
  try {
    await handleSecretEvent(parsed, secretEvents, ctx);
  } catch (error) {
    if (isRetryable(error)) throw error;
    logger.error('secret event failed and will not be retried', {
      target: `vaults/${parsed.vaultName}/secrets/${parsed.secretName}`,
      error: describeError(error),
    });
  }
}

app.eventGrid('keyVaultEvents', { handler: keyVaultEvents });

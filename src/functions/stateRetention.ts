import { app, type InvocationContext, type Timer } from '@azure/functions';
import { getDeps } from '../lib/app/deps';
import { applyRetention } from '../lib/maintenance/applyRetention';
import { invocationLogger } from './invocation';

/**
 * The daily retention sweep (03:30 UTC): old audit days and rejection counters, expired
 * idempotency keys and leases, finished runs past `STAMPKEEPER_AUDIT_RETENTION_DAYS`. The Functions
 * host runs a timer function as a singleton. A retryable failure is rethrown (the next run picks up
 * where this one stopped); a non-retryable one is recorded in the audit by the use case and settled.
 */
export async function stateRetention(_timer: Timer, context: InvocationContext): Promise<void> {
  const deps = getDeps();
  const logger = invocationLogger(context, 'stateRetention');
  await deps.ready();
  await applyRetention(deps.retention(logger), {
    auditRetentionDays: deps.settings.auditRetentionDays,
    runRetentionDays: deps.settings.auditRetentionDays,
    actor: 'system:timer',
    correlationId: context.invocationId,
  });
}

app.timer('stateRetention', { schedule: '0 30 3 * * *', handler: stateRetention });

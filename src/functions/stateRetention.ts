import { app, type InvocationContext, type Timer } from '@azure/functions';
import { getDeps } from '../lib/app/deps';
import { applyRetention } from '../lib/maintenance/applyRetention';
import { invocationLogger } from './invocation';

const LEASE = 'timer:stateRetention';
const LEASE_MS = 10 * 60_000;

/**
 * The daily retention sweep (03:30 UTC): old audit days, expired idempotency keys and leases,
 * finished runs past `STAMPKEEPER_AUDIT_RETENTION_DAYS`. One instance at a time (a lease). A
 * retryable failure is rethrown (the next run picks up where this one stopped); a non-retryable
 * one is recorded in the audit by the use case and settled.
 */
export async function stateRetention(_timer: Timer, context: InvocationContext): Promise<void> {
  const deps = getDeps();
  const logger = invocationLogger(context, 'stateRetention');
  await deps.ready();
  const lease = await deps.state.leases.acquire(LEASE, context.invocationId, LEASE_MS);
  if (!lease) {
    logger.info('another instance is applying retention');
    return;
  }
  try {
    await applyRetention(
      {
        audit: deps.state.audit,
        idempotency: deps.state.idempotency,
        leases: deps.state.leases,
        runs: deps.state.runs,
        clock: deps.platform.clock,
        logger,
      },
      {
        auditRetentionDays: deps.settings.auditRetentionDays,
        runRetentionDays: deps.settings.auditRetentionDays,
        actor: 'system:timer',
        correlationId: context.invocationId,
      },
    );
  } finally {
    await deps.state.leases.release(LEASE, context.invocationId).catch(() => undefined);
  }
}

app.timer('stateRetention', { schedule: '0 30 3 * * *', handler: stateRetention });

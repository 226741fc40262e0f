import type { UseCaseContext } from '../core/context';
import { isRetryable, type ValidationError } from '../core/errors';
import { stableHash } from '../core/ids';
import type { Logger } from '../core/logging';
import { type OnceResult, runOnce } from '../core/once';
import { redactText } from '../core/redact';
import { notifyAndAudit } from '../notify/notifyAndAudit';
import type { Clock } from '../ports/clock';
import type { ChannelResult, Notification, Notifier } from '../ports/notifier';
import type { SecretProperties, SecretVault } from '../ports/secrets';
import type { AuditLog, AuditOutcome, AuditRecord, IdempotencyStore } from '../ports/state';
import type { SecretEvent } from './keyVaultEvent';

const DAY_MS = 86_400_000;
/** Key Vault raises SecretNearExpiry 30 days before expiry. */
export const NEAR_EXPIRY_WINDOW_DAYS = 30;

/** What the policy says about a secret, as this use case needs it. */
export interface ManagedSecretView {
  owner?: string;
  channels: string[];
  rotation?: string;
}

export interface SecretPolicyView {
  /** The managed secret, or `undefined` when the policy does not name it. */
  lookup(vaultUrl: string, secretName: string): ManagedSecretView | undefined;
  /** Channels for secrets the policy does not name (reported, never touched). */
  defaultChannels(): string[];
  /** URLs of the vaults holding managed secrets (what the safety-net sweep looks at). */
  managedVaults(): string[];
}

export interface SecretEventDeps {
  vault: SecretVault;
  notifier: Notifier;
  audit: AuditLog;
  idempotency: IdempotencyStore;
  clock: Clock;
  logger: Logger;
  policy: SecretPolicyView;
  environment: string;
  dryRun: boolean;
  idempotencyTtlMs: number;
}

export type SecretEventContext = UseCaseContext;

export type SecretEventOutcome =
  | { status: 'handled'; outcome: AuditOutcome; auditId: string; channels: ChannelResult[] }
  | { status: 'duplicate'; previous: unknown };

/**
 * Handles a Key Vault secret lifecycle event: near expiry and expired events notify the secret's
 * channels (managed secrets) or the default channels (secrets the policy does not name: reported,
 * never touched); a new version is recorded. Exactly once per (event type, secret version): a
 * duplicate delivery answers `duplicate` and changes nothing.
 *
 * Reads secret metadata only (never a value): needs `secrets/list` on the vault.
 * Retry: throws `ConflictError` while another attempt holds the event and `TransientError` when a
 * channel failed transiently; both are retryable and a retry re-sends only the channels that failed.
 */
export async function handleSecretEvent(
  event: SecretEvent,
  deps: SecretEventDeps,
  ctx: SecretEventContext,
): Promise<SecretEventOutcome> {
  const kind = eventKind(event);
  const dryRun = ctx.dryRun ?? deps.dryRun;
  const expiry = event.expiresOn ? String(Math.floor(event.expiresOn.getTime() / 1000)) : 'none';
  // A moved expiry is a new fact about the same version; a dry run is remembered apart, so that
  // switching dry run off still acts on the same event.
  const key = `${dryRun ? 'dry-run|' : ''}secret-event|${kind}|${event.vaultUrl}|${event.secretName.toLowerCase()}|${event.version}|${expiry}`;
  const remembered = { ...deps, idempotencyTtlMs: rememberFor(event, kind, deps) };
  let once: OnceResult<Handled>;
  try {
    once = await runOnce(
      deps.idempotency,
      key,
      {
        owner: ctx.attemptId,
        ttlMs: remembered.idempotencyTtlMs,
        busyMessage: `secret event ${event.id} is being handled by another attempt`,
        summarize: (outcome) => ({ outcome: outcome.outcome, auditId: outcome.auditId }),
        abortSignal: ctx.abortSignal,
      },
      () => handleClaimed(event, kind, key, dryRun, remembered, ctx),
    );
  } catch (error) {
    if (!isRetryable(error)) await recordFailure(event, kind, key, error, deps, ctx);
    throw error;
  }
  if (once.status === 'duplicate') {
    deps.logger.info('duplicate secret event ignored', {
      operation: kind,
      target: targetOf(event),
      eventId: event.id,
    });
    return { status: 'duplicate', previous: once.previous };
  }
  return once.result;
}

type Handled = Extract<SecretEventOutcome, { status: 'handled' }>;

/** A failure no retry will mend (access denied, a bad answer): audited once, then settled by the caller. */
async function recordFailure(
  event: SecretEvent,
  kind: EventKind,
  key: string,
  error: unknown,
  deps: SecretEventDeps,
  ctx: SecretEventContext,
): Promise<void> {
  const reason = redactText(error instanceof Error ? error.message : String(error)).slice(0, 1000);
  await deps.audit
    .append(
      {
        id: stableHash('failed', key),
        time: deps.clock.now(),
        actor: ctx.actor,
        action: kind === 'secret.newVersion' ? 'secret.newVersion.observe' : `${kind}.notify`,
        target: targetOf(event),
        outcome: 'failed',
        correlationId: ctx.correlationId,
        reason,
        before: { eventId: event.id, eventType: event.type, eventVersion: event.version },
      },
      { abortSignal: ctx.abortSignal },
    )
    .catch((auditError: unknown) =>
      deps.logger.error('could not audit a failed secret event', {
        target: targetOf(event),
        error: redactText(auditError instanceof Error ? auditError.message : String(auditError)),
      }),
    );
}

/**
 * How long having handled this event is remembered. A secret near expiry stays so until it is
 * rotated, and the sweep finds it every few hours: remember the version until its expiry plus the
 * near-expiry window, so that neither redeliveries nor sweeps repeat the notification (a version
 * still expired a window later is notified again, as a reminder).
 */
function rememberFor(event: SecretEvent, kind: EventKind, deps: SecretEventDeps): number {
  if (kind === 'secret.newVersion' || !event.expiresOn) return deps.idempotencyTtlMs;
  const untilExpiry = event.expiresOn.getTime() - deps.clock.now().getTime();
  return Math.max(deps.idempotencyTtlMs, untilExpiry + NEAR_EXPIRY_WINDOW_DAYS * DAY_MS);
}

type EventKind = 'secret.nearExpiry' | 'secret.expired' | 'secret.newVersion';

function eventKind(event: SecretEvent): EventKind {
  switch (event.type) {
    case 'Microsoft.KeyVault.SecretNearExpiry':
      return 'secret.nearExpiry';
    case 'Microsoft.KeyVault.SecretExpired':
      return 'secret.expired';
    case 'Microsoft.KeyVault.SecretNewVersionCreated':
      return 'secret.newVersion';
  }
}

async function handleClaimed(
  event: SecretEvent,
  kind: EventKind,
  key: string,
  dryRun: boolean,
  deps: SecretEventDeps,
  ctx: SecretEventContext,
): Promise<Handled> {
  const managed = deps.policy.lookup(event.vaultUrl, event.secretName);
  const current = await deps.vault.getSecretProperties(event.vaultUrl, event.secretName, {
    abortSignal: ctx.abortSignal,
  });
  const base = {
    id: stableHash(key),
    time: deps.clock.now(),
    actor: ctx.actor,
    target: targetOf(event),
    correlationId: ctx.correlationId,
    before: describe(current, event),
  };

  if (kind === 'secret.newVersion') {
    const record: AuditRecord = {
      ...base,
      action: 'secret.newVersion.observe',
      outcome: 'reported',
      reason: managed
        ? 'new version of a managed secret'
        : 'new version of a secret the policy does not name',
    };
    await deps.audit.append(record, { abortSignal: ctx.abortSignal });
    return { status: 'handled', outcome: record.outcome, auditId: record.id, channels: [] };
  }

  const action = `${kind}.notify`;
  const stale = staleness(event, kind, current, deps.clock.now());
  if (stale) {
    await deps.audit.append(
      { ...base, action, outcome: 'skipped', reason: stale },
      { abortSignal: ctx.abortSignal },
    );
    deps.logger.info('secret event skipped', { operation: action, target: base.target, reason: stale });
    return { status: 'handled', outcome: 'skipped', auditId: base.id, channels: [] };
  }

  const channels = managed ? managed.channels : deps.policy.defaultChannels();
  const notification = buildNotification(event, kind, managed, current, key, deps, ctx);
  const result = await notifyAndAudit(
    {
      notification,
      channels,
      key,
      record: {
        ...base,
        action,
        reason: managed ? undefined : 'the policy does not name this secret: reported, not touched',
      },
      sentOutcome: managed ? 'succeeded' : 'reported',
      dryRun,
      what: 'the event',
    },
    deps,
    ctx,
  );
  deps.logger.info('secret event handled', {
    operation: action,
    target: base.target,
    outcome: result.outcome,
  });
  return { status: 'handled', ...result };
}

/** Why acting on this event would be wrong now (the secret moved on since it was raised), if so. */
function staleness(
  event: SecretEvent,
  kind: EventKind,
  current: SecretProperties | undefined,
  now: Date,
): string | undefined {
  if (!current) return 'the secret no longer exists';
  if (current.version && current.version !== event.version) {
    return `a newer version (${current.version}) is current: the event's version ${event.version} was already replaced`;
  }
  if (!current.expiresOn) return 'the current version no longer has an expiry';
  if (
    kind === 'secret.nearExpiry' &&
    current.expiresOn.getTime() - now.getTime() > NEAR_EXPIRY_WINDOW_DAYS * DAY_MS
  ) {
    return `the expiry was moved to ${current.expiresOn.toISOString()}, beyond the near-expiry window`;
  }
  if (kind === 'secret.expired' && current.expiresOn.getTime() > now.getTime()) {
    return `the expiry was moved to ${current.expiresOn.toISOString()}, in the future`;
  }
  return undefined;
}

function buildNotification(
  event: SecretEvent,
  kind: EventKind,
  managed: ManagedSecretView | undefined,
  current: SecretProperties | undefined,
  key: string,
  deps: SecretEventDeps,
  ctx: SecretEventContext,
): Notification {
  const now = deps.clock.now();
  const expiresOn = current?.expiresOn ?? event.expiresOn;
  const daysLeft = expiresOn ? Math.ceil((expiresOn.getTime() - now.getTime()) / DAY_MS) : undefined;
  const expired = kind === 'secret.expired';
  const where = `${event.secretName} in ${event.vaultName}`;
  const title = expired ? `Secret expired: ${where}` : `Secret near expiry: ${where}`;
  const summary = [
    expired
      ? `The current version of ${where} expired on ${expiresOn?.toISOString() ?? 'an unknown date'}.`
      : `The current version of ${where} expires on ${expiresOn?.toISOString() ?? 'an unknown date'} (${daysLeft} day(s) left).`,
    managed
      ? `Owner: ${managed.owner ?? 'unspecified'}. Rotation: ${managed.rotation ?? 'not configured'}.`
      : 'The operations policy does not name this secret: stampkeeper reports it and will not touch it.',
  ].join(' ');
  const facts: Record<string, string> = {
    Vault: event.vaultName,
    Secret: event.secretName,
    Version: event.version,
    Expires: expiresOn?.toISOString() ?? 'unknown',
    Environment: deps.environment,
    Managed: managed ? 'yes' : 'no',
  };
  if (daysLeft !== undefined && !expired) facts['Days left'] = String(daysLeft);
  if (managed?.owner) facts.Owner = managed.owner;
  return {
    id: stableHash('notification', key),
    type: expired ? 'com.stampkeeper.secret.expired' : 'com.stampkeeper.secret.nearExpiry',
    subject: targetOf(event),
    severity: expired ? 'critical' : 'warning',
    title,
    summary,
    facts,
    correlationId: ctx.correlationId,
    time: now,
    data: {
      vaultUrl: event.vaultUrl,
      vaultName: event.vaultName,
      secretName: event.secretName,
      version: event.version,
      expiresOn: expiresOn?.toISOString() ?? null,
      daysLeft: daysLeft ?? null,
      managed: Boolean(managed),
      owner: managed?.owner ?? null,
      sourceEventId: event.id,
      environment: deps.environment,
    },
  };
}

function describe(current: SecretProperties | undefined, event: SecretEvent): Record<string, unknown> {
  return {
    eventId: event.id,
    eventType: event.type,
    eventVersion: event.version,
    currentVersion: current?.version ?? null,
    enabled: current?.enabled ?? null,
    expiresOn: current?.expiresOn?.toISOString() ?? null,
  };
}

/** The audit / notification target of a secret: `vaults/{vault}/secrets/{name}`. */
export function targetOf(event: Pick<SecretEvent, 'vaultName' | 'secretName'>): string {
  return `vaults/${event.vaultName.toLowerCase()}/secrets/${event.secretName}`;
}

/**
 * Records an event that failed validation (or is of a type this app does not handle): one audit
 * record per distinct event id, nothing else is done. Never stores the raw payload.
 */
export async function recordRejectedEvent(
  raw: unknown,
  error: ValidationError,
  deps: Pick<SecretEventDeps, 'audit' | 'clock' | 'logger'>,
  ctx: Pick<SecretEventContext, 'actor' | 'correlationId' | 'abortSignal'>,
): Promise<AuditRecord> {
  const envelope = typeof raw === 'object' && raw !== null ? (raw as Record<string, unknown>) : {};
  const eventId = typeof envelope.id === 'string' ? envelope.id.slice(0, 200) : undefined;
  const subject =
    typeof envelope.subject === 'string' && envelope.subject.trim()
      ? envelope.subject.trim().slice(0, 200)
      : 'unknown';
  const record: AuditRecord = {
    id: stableHash('rejected-event', eventId ?? ctx.correlationId),
    time: deps.clock.now(),
    actor: ctx.actor,
    action: 'event.reject',
    target: `events/${subject}`,
    outcome: 'rejected',
    correlationId: ctx.correlationId,
    reason: error.problems.join('; ').slice(0, 2000) || error.message.slice(0, 2000),
    after: { eventId: eventId ?? null, eventType: error.metadata.eventType ?? null },
  };
  await deps.audit.append(record, { abortSignal: ctx.abortSignal });
  deps.logger.warn('event rejected', {
    operation: 'event.reject',
    target: record.target,
    reason: record.reason,
  });
  return record;
}

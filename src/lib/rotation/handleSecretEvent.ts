import type { UseCaseContext } from '../core/context';
import { isRetryable, NotFoundError, type ValidationError } from '../core/errors';
import { stableHash } from '../core/ids';
import type { Logger } from '../core/logging';
import { type OnceResult, type OnceWork, runOnce } from '../core/once';
import { redactText } from '../core/redact';
import { notifyAndAudit } from '../notify/notifyAndAudit';
import type { Clock } from '../ports/clock';
import type { ChannelResult, Notification, Notifier } from '../ports/notifier';
import type { SecretProperties, SecretVault } from '../ports/secrets';
import type { AuditLog, AuditOutcome, AuditRecord, IdempotencyStore, RejectionLog } from '../ports/state';
import { currentVersionOf } from './currentVersion';
import type { SecretEvent } from './keyVaultEvent';
import type { StartRotationRequest, StartRotationResult } from './startRotation';

const DAY_MS = 86_400_000;
/** Key Vault raises SecretNearExpiry 30 days before expiry. */
export const NEAR_EXPIRY_WINDOW_DAYS = 30;
/** Expiries compared between an event and the vault differ by at most the epoch rounding. */
const SAME_EXPIRY_MS = 1000;

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
  /**
   * Whether the app may call this vault: one the policy names or the settings allow, on a Key Vault
   * DNS suffix. Events name vaults; they never steer where the app connects.
   */
  vaultAllowed(vaultUrl: string): boolean;
}

export interface SecretEventDeps {
  vault: SecretVault;
  notifier: Notifier;
  audit: AuditLog;
  idempotency: IdempotencyStore;
  rejections: RejectionLog;
  clock: Clock;
  logger: Logger;
  policy: SecretPolicyView;
  environment: string;
  dryRun: boolean;
  idempotencyTtlMs: number;
  /** How long a claim protects work in progress: longer than the longest invocation. */
  claimLeaseMs: number;
  /**
   * Starts (or finds) the rotation of a managed secret with a key provider (`startRotation`).
   * Absent: events only notify.
   */
  startRotation?: (request: StartRotationRequest) => Promise<StartRotationResult>;
}

export type SecretEventContext = UseCaseContext;

export type SecretEventOutcome =
  | { status: 'handled'; outcome: AuditOutcome; auditId: string; channels: ChannelResult[] }
  /** Nothing done, decided from state that may change: audited, the key left free. */
  | { status: 'skipped'; reason: string; auditId: string }
  | { status: 'duplicate'; previous: unknown }
  /** The event names a vault the app may not call: counted as a rejection, nothing called. */
  | { status: 'rejected'; reason: string; auditId: string };

/** Options of one handling. */
export interface HandleSecretEventOptions {
  /**
   * The secret's versions as just listed by the caller (the sweep), so that they are not listed a
   * second time. Omitted: listed here.
   */
  versions?: SecretProperties[];
}

/**
 * Handles a Key Vault secret lifecycle event: near expiry and expired events notify the secret's
 * channels (managed secrets) or the default channels (secrets the policy does not name: reported,
 * never touched); certificate-backed secrets are reported as certificate-managed; a new version is
 * recorded. At most once per (event kind, secret version, expiry): a duplicate answers `duplicate`.
 *
 * Only an action that was done consumes the idempotency key. A decision to do nothing, taken from
 * the vault's state (the version was replaced, the expiry moved away, the secret is gone or has no
 * expiry), is audited but leaves the key free, so that a redelivery, a retry or the sweep acts if
 * the state then calls for it. Where the state is ambiguous (versions created in the same second),
 * it acts: a duplicate notice costs one message, a missed expiry an outage. An early event (Key
 * Vault's clock or ours off by a little) whose expiry is unchanged is a warning, not noise.
 *
 * Reads secret metadata only (never a value): needs `secrets/list` on the vault. A vault that
 * neither the policy nor the settings allow is never called: the event is rejected.
 * Retry: throws retryable errors (`InProgressError` while another attempt holds the event,
 * `TransientError` when a channel failed transiently); a retry re-sends only the channels that failed.
 */
export async function handleSecretEvent(
  event: SecretEvent,
  deps: SecretEventDeps,
  ctx: SecretEventContext,
  options: HandleSecretEventOptions = {},
): Promise<SecretEventOutcome> {
  if (!deps.policy.vaultAllowed(event.vaultUrl)) {
    const reason = `vault ${event.vaultUrl} is neither named by the policy nor allowed by STAMPKEEPER_ALLOWED_VAULTS: not called`;
    const auditId = await countRejectedEvent(
      { source: 'other', reason: 'vault-not-allowed', problems: [reason], eventId: event.id.slice(0, 200) },
      deps,
      ctx,
    );
    return { status: 'rejected', reason, auditId };
  }
  return handleAllowed(event, eventKind(event), deps, ctx, options);
}

async function handleAllowed(
  event: SecretEvent,
  kind: EventKind,
  deps: SecretEventDeps,
  ctx: SecretEventContext,
  options: HandleSecretEventOptions,
): Promise<SecretEventOutcome> {
  const dryRun = ctx.dryRun ?? deps.dryRun;
  const key = eventKey(event, kind, dryRun);
  let once: OnceResult<Handled | Skipped | Redirect>;
  try {
    once = await runOnce(
      deps.idempotency,
      key,
      {
        owner: ctx.attemptId,
        ttlMs: rememberFor(event, kind, deps),
        leaseMs: deps.claimLeaseMs,
        busyMessage: `secret event ${event.id} is being handled by another attempt`,
        summarize: (outcome) =>
          outcome.status === 'handled' ? { outcome: outcome.outcome, auditId: outcome.auditId } : null,
        consumed: (outcome) => outcome.status === 'handled',
        abortSignal: ctx.abortSignal,
      },
      (work) => handleClaimed(event, kind, key, dryRun, deps, ctx, options, work),
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
  const result = once.result;
  // The version expired meanwhile (or the events came out of order): it is handled as expired, under
  // the expired event's key, so that the real SecretExpired and the sweep collapse into it.
  if (result.status === 'redirect') return handleAllowed(event, 'secret.expired', deps, ctx, options);
  return result;
}

type Handled = Extract<SecretEventOutcome, { status: 'handled' }>;
type Skipped = Extract<SecretEventOutcome, { status: 'skipped' }>;
type Redirect = { status: 'redirect' };

/** The idempotency key: what is being done to what (never the delivery id). */
function eventKey(event: SecretEvent, kind: EventKind, dryRun: boolean): string {
  const expiry = event.expiresOn ? String(Math.floor(event.expiresOn.getTime() / 1000)) : 'none';
  // A moved expiry is a new fact about the same version; a dry run is remembered apart, so that
  // switching dry run off still acts on the same event.
  return `${dryRun ? 'dry-run|' : ''}secret-event|${kind}|${event.vaultUrl}|${event.secretName.toLowerCase()}|${event.version}|${expiry}`;
}

/** A failure no retry will mend (access denied, a bad answer, a bug): audited once, then settled by the caller. */
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
        before: {
          eventId: event.id,
          eventType: event.type,
          eventVersion: event.version,
          error: error instanceof Error ? error.name : typeof error,
        },
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

async function listVersions(
  event: SecretEvent,
  deps: SecretEventDeps,
  ctx: SecretEventContext,
): Promise<SecretProperties[]> {
  const versions: SecretProperties[] = [];
  try {
    for await (const item of deps.vault.listSecretVersions(event.vaultUrl, event.secretName, {
      abortSignal: ctx.abortSignal,
    })) {
      versions.push(item);
    }
  } catch (error) {
    // A secret deleted meanwhile: no versions (the vault itself failing is another error).
    if (error instanceof NotFoundError) return [];
    throw error;
  }
  return versions;
}

async function handleClaimed(
  event: SecretEvent,
  kind: EventKind,
  key: string,
  dryRun: boolean,
  deps: SecretEventDeps,
  ctx: SecretEventContext,
  options: HandleSecretEventOptions,
  work: OnceWork,
): Promise<Handled | Skipped | Redirect> {
  const managed = deps.policy.lookup(event.vaultUrl, event.secretName);
  const versions = options.versions ?? (await listVersions(event, deps, ctx));
  const { candidates, ambiguous } = currentVersionOf(versions);
  const own = versions.find((v) => v.version === event.version);
  const isCandidate = candidates.some((v) => v.version === event.version);
  // The version the event speaks of, when it may be the current one (an unlisted version of a secret
  // that still exists is a doubt, and doubt acts on the event's own facts).
  const current = isCandidate ? own : undefined;
  const now = deps.clock.now();
  const base = {
    time: now,
    actor: ctx.actor,
    target: targetOf(event),
    correlationId: ctx.correlationId,
    before: describe(event, versions, candidates, ambiguous),
  };

  if (kind === 'secret.newVersion') {
    const record: AuditRecord = {
      ...base,
      id: stableHash(key),
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
  const stale = staleness(event, kind, versions, own, isCandidate, now);
  if (stale) {
    // Audited once per key and reason (a redelivery making the same decision adds nothing), and
    // apart from the record of the handling that may still come under the same key.
    const id = stableHash('skipped', key, stale);
    await deps.audit.append(
      { ...base, id, action, outcome: 'skipped', reason: `${stale}; the event stays open` },
      { abortSignal: ctx.abortSignal },
    );
    deps.logger.info('secret event skipped, key left free', {
      operation: action,
      target: base.target,
      reason: stale,
    });
    return { status: 'skipped', reason: stale, auditId: id };
  }
  const expiresOn = current?.expiresOn ?? event.expiresOn;
  if (kind === 'secret.nearExpiry' && expiresOn && expiresOn.getTime() <= now.getTime()) {
    return { status: 'redirect' };
  }

  const certificate = (own ?? candidates[0])?.managed === true;
  const channels = managed ? managed.channels : deps.policy.defaultChannels();
  // A managed secret with a key provider is rotated, not only announced (one run per version:
  // the event's redeliveries and the sweep find the same run).
  const rotation =
    managed?.rotation && managed.rotation !== 'manual' && !certificate && deps.startRotation
      ? await deps.startRotation({
          vaultUrl: event.vaultUrl,
          secretName: event.secretName,
          trigger: event.schema === 'Sweep' ? 'sweep' : 'event',
          expired: kind === 'secret.expired',
          version: event.version,
          dryRun,
          actor: ctx.actor,
          correlationId: ctx.correlationId,
        })
      : undefined;
  const notification = buildNotification(event, kind, managed, expiresOn, certificate, key, deps, ctx);
  if (rotation) {
    const runId = rotation.status === 'halted' ? rotation.failedRun.id : rotation.run.id;
    notification.facts.Rotation =
      rotation.status === 'halted'
        ? `halted: rotation ${runId} failed; resume it (POST /api/rotations/${runId}/resume)`
        : rotation.status === 'ended'
          ? `not started: rotation ${runId} of this version already ended (${rotation.run.state})`
          : `${rotation.status === 'started' ? 'started' : 'under way'}: run ${runId}`;
    notification.data.rotation = { status: rotation.status, runId };
    if (rotation.status === 'halted') notification.severity = 'critical';
  }
  const reason = certificate
    ? "certificate-backed secret: renewed by its certificate's policy, never rotated by stampkeeper"
    : managed
      ? undefined
      : 'the policy does not name this secret: reported, not touched';
  const result = await notifyAndAudit(
    {
      notification,
      channels,
      record: { ...base, id: stableHash(key), action, reason },
      sentOutcome: managed && !certificate ? 'succeeded' : 'reported',
      dryRun,
      what: 'the event',
    },
    deps,
    ctx,
    work,
  );
  deps.logger.info('secret event handled', {
    operation: action,
    target: base.target,
    outcome: result.outcome,
  });
  return { status: 'handled', ...result };
}

/**
 * Why acting on this event would be wrong now (the secret moved on since it was raised), if so.
 * Only facts that were read count: an expiry that is unchanged is Key Vault's word, even when our
 * clock says the event is a little early.
 */
function staleness(
  event: SecretEvent,
  kind: EventKind,
  versions: SecretProperties[],
  own: SecretProperties | undefined,
  isCandidate: boolean,
  now: Date,
): string | undefined {
  if (versions.length === 0) return 'the secret no longer exists';
  if (own && !isCandidate) {
    const newer = currentVersionOf(versions)
      .candidates.map((v) => v.version)
      .join(', ');
    return `a newer version (${newer}) is current: the event's version ${event.version} was already replaced`;
  }
  if (!own) return undefined; // not listed (yet): doubt acts
  if (!own.expiresOn) return 'the current version no longer has an expiry';
  const moved =
    !event.expiresOn || Math.abs(own.expiresOn.getTime() - event.expiresOn.getTime()) >= SAME_EXPIRY_MS;
  if (!moved) return undefined;
  if (
    kind === 'secret.nearExpiry' &&
    own.expiresOn.getTime() - now.getTime() > NEAR_EXPIRY_WINDOW_DAYS * DAY_MS
  ) {
    return `the expiry was moved to ${own.expiresOn.toISOString()}, beyond the near-expiry window`;
  }
  if (kind === 'secret.expired' && own.expiresOn.getTime() > now.getTime()) {
    return `the expiry was moved to ${own.expiresOn.toISOString()}, in the future`;
  }
  return undefined;
}

function buildNotification(
  event: SecretEvent,
  kind: EventKind,
  managed: ManagedSecretView | undefined,
  expiresOn: Date | undefined,
  certificate: boolean,
  key: string,
  deps: SecretEventDeps,
  ctx: SecretEventContext,
): Notification {
  const now = deps.clock.now();
  const daysLeft = expiresOn ? Math.ceil((expiresOn.getTime() - now.getTime()) / DAY_MS) : undefined;
  const expired = kind === 'secret.expired';
  const where = `${event.secretName} in ${event.vaultName}`;
  const what = certificate ? 'Certificate-backed secret' : 'Secret';
  const title = expired ? `${what} expired: ${where}` : `${what} near expiry: ${where}`;
  const summary = [
    expired
      ? `The current version of ${where} expired on ${expiresOn?.toISOString() ?? 'an unknown date'}.`
      : `The current version of ${where} expires on ${expiresOn?.toISOString() ?? 'an unknown date'} (${daysLeft} day(s) left).`,
    certificate
      ? "It is the secret of a Key Vault certificate: it is renewed by the certificate's policy (check its auto-renewal), never rotated by stampkeeper."
      : managed
        ? `Owner: ${managed.owner ?? 'unspecified'}. Rotation: ${managed.rotation ?? 'not configured'}.`
        : 'The operations policy does not name this secret: stampkeeper reports it and will not touch it.',
  ].join(' ');
  const facts: Record<string, string> = {
    Vault: event.vaultName,
    Secret: event.secretName,
    Version: event.version,
    Expires: expiresOn?.toISOString() ?? 'unknown',
    Environment: deps.environment,
    Managed: certificate ? 'certificate' : managed ? 'yes' : 'no',
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
      certificateManaged: certificate,
      owner: managed?.owner ?? null,
      sourceEventId: event.id,
      environment: deps.environment,
    },
  };
}

function describe(
  event: SecretEvent,
  versions: SecretProperties[],
  candidates: SecretProperties[],
  ambiguous: boolean,
): Record<string, unknown> {
  const own = versions.find((v) => v.version === event.version);
  return {
    eventId: event.id,
    eventType: event.type,
    eventVersion: event.version,
    currentVersion: ambiguous ? null : (candidates[0]?.version ?? null),
    ...(ambiguous ? { currentCandidates: candidates.map((v) => v.version) } : {}),
    enabled: own?.enabled ?? null,
    expiresOn: own?.expiresOn?.toISOString() ?? null,
    ...(own?.managed ? { certificateManaged: true } : {}),
  };
}

/** The audit / notification target of a secret: `vaults/{vault}/secrets/{name}`. */
export function targetOf(event: Pick<SecretEvent, 'vaultName' | 'secretName'>): string {
  return `vaults/${event.vaultName.toLowerCase()}/secrets/${event.secretName}`;
}

/** Reason codes of rejected events: a small fixed set, so that rejections stay countable. */
export type EventRejectionReason = 'invalid-event' | 'unhandled-event-type' | 'vault-not-allowed';

/**
 * Records an event that failed validation (or is of a type this app does not handle): counted per
 * hour, source and reason, with one audit record per such bucket (its first event's problems), so
 * that a junk batch of thousands writes a handful of rows. Never stores the raw payload. The source
 * is the vault's name when the policy or the settings allow it, `other` otherwise.
 */
export async function recordRejectedEvent(
  raw: unknown,
  error: ValidationError,
  deps: Pick<SecretEventDeps, 'rejections' | 'clock' | 'logger' | 'policy'>,
  ctx: Pick<SecretEventContext, 'actor' | 'correlationId' | 'abortSignal'>,
): Promise<{ auditId: string; reason: EventRejectionReason; source: string }> {
  const envelope = typeof raw === 'object' && raw !== null ? (raw as Record<string, unknown>) : {};
  const eventId = typeof envelope.id === 'string' ? envelope.id.slice(0, 200) : undefined;
  const reason: EventRejectionReason = error.problems.some((p) =>
    p.includes('is not a Key Vault secret event'),
  )
    ? 'unhandled-event-type'
    : 'invalid-event';
  const source = sourceLabel(envelope, deps.policy);
  const problems = error.problems.length > 0 ? error.problems : [error.message];
  const auditId = await countRejectedEvent({ source, reason, problems, eventId }, deps, ctx);
  return { auditId, reason, source };
}

/** Counts one rejected event (see `RejectionLog`) and logs it by name; the bucket's audit id. */
async function countRejectedEvent(
  rejection: {
    source: string;
    reason: EventRejectionReason;
    problems: string[];
    eventId: string | undefined;
  },
  deps: Pick<SecretEventDeps, 'rejections' | 'clock' | 'logger'>,
  ctx: Pick<SecretEventContext, 'actor' | 'correlationId' | 'abortSignal'>,
): Promise<string> {
  const { auditId } = await deps.rejections.record(
    {
      kind: 'event',
      source: rejection.source,
      reason: rejection.reason,
      problems: rejection.problems,
      sampleId: rejection.eventId,
      actor: ctx.actor,
      correlationId: ctx.correlationId,
      time: deps.clock.now(),
    },
    { abortSignal: ctx.abortSignal },
  );
  deps.logger.warn('event rejected', {
    operation: 'event.reject',
    target: `events/${rejection.source}`,
    reason: rejection.reason,
    eventId: rejection.eventId ?? null,
  });
  return auditId;
}

/** An allowed vault's name from the event's topic / source, or `other`: a bounded label. */
function sourceLabel(
  envelope: Record<string, unknown>,
  policy: Pick<SecretPolicyView, 'vaultAllowed'>,
): string {
  const topic = [envelope.topic, envelope.source].find((v): v is string => typeof v === 'string') ?? '';
  const match = /\/providers\/Microsoft\.KeyVault\/vaults\/([A-Za-z0-9-]{3,24})$/i.exec(topic.trim());
  const name = match?.[1]?.toLowerCase();
  return name && policy.vaultAllowed(`https://${name}.vault.azure.net`) ? name : 'other';
}

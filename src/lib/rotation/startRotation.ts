/**
 * Starting a rotation: from a Key Vault event, the safety-net sweep, or a person / pipeline. One
 * rotation per secret at a time; a secret whose last rotation failed is halted until a person
 * resumes it; the event and the sweep of one version map to one run.
 */
import {
  channelsFor,
  findManagedSecret,
  type KeyRotationPolicy,
  type Policy,
  revokeProblems,
} from '../config/policy';
import {
  ConflictError,
  InProgressError,
  NotFoundError,
  TransientError,
  ValidationError,
} from '../core/errors';
import { stableHash } from '../core/ids';
import type { Logger } from '../core/logging';
import { type OnceWork, runOnce } from '../core/once';
import { sendToChannelsOnce } from '../notify/sendOnce';
import type { Clock } from '../ports/clock';
import type { ChannelResult, Notification, Notifier } from '../ports/notifier';
import type { SecretVault } from '../ports/secrets';
import type { AuditLog, IdempotencyStore } from '../ports/state';
import type { RunEngine } from '../runs';
import { isTerminal, type Run } from '../runs/types';
import {
  checkRotatable,
  ROTATION_KIND,
  type RotationInput,
  type RotationSummary,
  revokeRefusal,
} from './rotation';

export interface RotationStartDeps {
  engine: RunEngine;
  policy: Policy;
  clock: Clock;
  logger: Logger;
  /**
   * Reads the current version's tags before a person's or a pipeline's rotation starts, so that a
   * secret that cannot be rotated is refused at once (400) instead of failing, and halting, a run.
   */
  vault?: SecretVault;
  /**
   * Why the secret's consumers cannot be rolled as configured (`consumerProblems`): checked before a
   * person's or a pipeline's rotation starts, so that it is refused at once (400).
   */
  consumerProblems?(rotation: KeyRotationPolicy): string[];
}

/** How many of a secret's latest rotations are looked at for its last real (not dry) one. */
const HALT_LOOKBACK = 20;

export interface StartRotationRequest {
  vaultUrl: string;
  secretName: string;
  trigger: RotationInput['trigger'];
  /** Overrides the policy's mode for this run (`revoke` when the key was exposed). */
  mode?: 'alternate' | 'revoke';
  dryRun?: boolean;
  /** The version is already expired: the rotation does not wait for its window. */
  expired?: boolean;
  /** Event and sweep rotations of one version are one run: the version they are about. */
  version?: string;
  /** The failed run this one resumes (clears the halt). */
  resumes?: string;
  actor: string;
  correlationId: string;
}

export type StartRotationResult =
  | { status: 'started' | 'active'; run: Run }
  /**
   * The rotation of this very version (an event's or a sweep's) already ended (succeeded, or
   * cancelled): nothing started, and nothing is under way.
   */
  | { status: 'ended'; run: Run }
  /** The secret's last rotation failed: nothing starts until a person resumes it. */
  | { status: 'halted'; failedRun: Run };

/** The audit / run target of a secret: `vaults/{vault}/secrets/{name}` (as the slice's). */
export function rotationTarget(vaultName: string, secretName: string): string {
  return `vaults/${vaultName.toLowerCase()}/secrets/${secretName}`;
}

/** The rotation policy of a managed secret, or why there is none (404 / 400). */
export function rotationPolicyOf(
  policy: Policy,
  vaultUrl: string,
  secretName: string,
): { managed: NonNullable<ReturnType<typeof findManagedSecret>>; rotation: KeyRotationPolicy } {
  const managed = findManagedSecret(policy, vaultUrl, secretName);
  if (!managed) throw new NotFoundError(`the policy does not name secret ${secretName} in ${vaultUrl}`);
  if (managed.rotation.provider === 'manual') {
    throw new ValidationError(`secret ${secretName} is rotated by hand (rotation.provider: manual)`, [
      'rotation.provider: manual: stampkeeper notifies, people rotate',
    ]);
  }
  return { managed, rotation: managed.rotation };
}

/**
 * Starts (or finds) the rotation of a managed secret. Returns the active run when one is under way,
 * `halted` when the secret's last rotation failed (unless `resumes` names that run), the new run
 * otherwise. Event and sweep triggers of the same version give the same run (an idempotency key of
 * the version), so a duplicated event never starts a second rotation.
 */
export async function startRotation(
  request: StartRotationRequest,
  deps: RotationStartDeps,
): Promise<StartRotationResult> {
  const { managed, rotation } = rotationPolicyOf(deps.policy, request.vaultUrl, request.secretName);
  const vaultName = new URL(managed.vaultUrl).hostname.split('.')[0]!;
  const target = rotationTarget(vaultName, managed.name);
  const dryRun = request.dryRun ?? false;
  // A revoke asked for on demand is refused before anything is read or started when a consumer's
  // roll would not prove its move; any other revoke (a resumption) is stopped by its plan step.
  if (request.trigger === 'manual' && request.resumes === undefined && request.mode === 'revoke') {
    const unproven = revokeProblems(rotation);
    if (unproven.length > 0) {
      throw new ValidationError(
        `${revokeRefusal(managed.name, unproven)}: nothing started (rotate in alternate mode, or give them a healthUrlSetting)`,
        unproven,
      );
    }
  }
  // The halt is a real rotation's failure: a dry run that failed changed nothing and halts nothing.
  const history = await deps.engine.runsForTarget(ROTATION_KIND, target, { limit: HALT_LOOKBACK });
  const latest = history.find((r) => !r.dryRun);
  // Only the secret's last rotation can be resumed (an older failure was resumed already).
  if (request.resumes !== undefined && latest?.id !== request.resumes) {
    throw new ConflictError(
      `run ${request.resumes} is not the secret's last rotation (${latest?.id ?? 'none'}): nothing to resume`,
      { retryable: false },
    );
  }
  if (latest && latest.state === 'failed' && request.resumes !== latest.id) {
    deps.logger.warn('rotation halted: the last one failed', { target, runId: latest.id });
    return { status: 'halted', failedRun: latest };
  }
  if (request.trigger === 'manual' && deps.vault) {
    const current = await deps.vault.getSecretProperties(managed.vaultUrl, managed.name);
    const check = checkRotatable(current, { vaultName, secretName: managed.name, rotation });
    if (!check.ok) {
      throw new ValidationError(`secret ${managed.name} in ${vaultName} cannot be rotated: nothing started`, [
        `${check.code}: ${check.message}`,
      ]);
    }
  }
  // A resumption finishes what the failed run was asked to do: its mode (a revoke asked for when
  // the key was exposed) holds unless the person resuming names another.
  const resumedMode =
    request.resumes !== undefined ? (latest?.input as RotationInput | undefined)?.rotation.mode : undefined;
  const mode = request.mode ?? resumedMode;
  const misconfigured = request.trigger === 'manual' ? (deps.consumerProblems?.(rotation) ?? []) : [];
  if (misconfigured.length > 0) {
    throw new ValidationError(
      `the consumers of ${managed.name} in ${vaultName} cannot be rolled as configured: nothing started`,
      misconfigured,
    );
  }
  const input: RotationInput = {
    vaultUrl: managed.vaultUrl,
    vaultName,
    secretName: managed.name,
    rotation: { ...rotation, ...(mode ? { mode } : {}) } as RotationInput['rotation'],
    trigger: request.trigger,
    immediate: request.trigger === 'manual' || request.expired === true || request.resumes !== undefined,
    channels: channelsFor(deps.policy, managed).map((c) => c.name),
    resumes: request.resumes ?? null,
    resumedStandby: request.resumes !== undefined && latest ? unpublishedStandby(latest) : null,
  };
  const automatic =
    request.trigger !== 'manual' && request.version !== undefined && request.resumes === undefined;
  // One run per (version, near expiry or expired): the event and the sweep of one version find the
  // same run; a scheduled rotation a person cancelled does not stop the expired one.
  const key = `${dryRun ? 'dry-run|' : ''}${managed.vaultUrl}|${managed.name.toLowerCase()}|${request.version}|${request.expired ? 'expired' : 'nearExpiry'}`;
  const { run, created } = await deps.engine.startRun(ROTATION_KIND, {
    target,
    input,
    dryRun,
    actor: request.actor,
    correlationId: request.correlationId,
    ...(automatic ? { idempotencyKey: key } : {}),
  });
  if (!created && run.dryRun !== dryRun) {
    // The secret's one run slot is held by a run of the other kind (a dry run while a real rotation
    // is asked for, or the reverse): neither may stand for the other. Retryable: once it is over,
    // Event Grid's redelivery, the sweep or the caller's retry starts the right one.
    throw new InProgressError(
      `a ${run.dryRun ? 'dry run' : 'rotation'} of ${managed.name} (run ${run.id}) is under way: try again when it ends`,
      { metadata: { runId: run.id } },
    );
  }
  if (!created && isTerminal(run.state)) {
    deps.logger.info('the rotation of this version already ended: nothing started', {
      target,
      runId: run.id,
      state: run.state,
      trigger: request.trigger,
    });
    return { status: 'ended', run };
  }
  if (!created) refuseWeaker(run, input, managed.name);
  deps.logger.info(created ? 'rotation started' : 'rotation already under way', {
    target,
    runId: run.id,
    trigger: request.trigger,
  });
  return { status: created ? 'started' : 'active', run };
}

/** The fingerprint of the standby key a failed run regenerated and did not publish, or null. */
function unpublishedStandby(failed: Run): string | null {
  const step = (name: string) => failed.steps.find((s) => s.name === name);
  if (step('publish')?.status === 'done') return null;
  const regenerated = step('regenerate');
  const output =
    regenerated?.status === 'done' ? (regenerated.output as { fingerprint?: unknown }) : undefined;
  return typeof output?.fingerprint === 'string' ? output.fingerprint : null;
}

/**
 * A request found another rotation of the secret under way: it stands for the request only when it
 * does at least what was asked. A revoke asked while an alternate rotation runs (the old key would
 * stay valid), or an on-demand rotation while a scheduled one still waits for its window (it would
 * wait too), is refused (409) with the run's id: cancel it or retry when it ends.
 */
function refuseWeaker(active: Run, requested: RotationInput, secretName: string): void {
  const running = active.input as RotationInput;
  if (requested.rotation.mode === 'revoke' && running.rotation.mode !== 'revoke') {
    throw new ConflictError(
      `an alternate rotation of ${secretName} (run ${active.id}) is under way and would leave the old key valid: retry the revoke when it ends, or cancel it`,
      { retryable: false, metadata: { runId: active.id } },
    );
  }
  const planned = active.steps.find((s) => s.name === 'plan')?.status === 'done';
  if (requested.trigger === 'manual' && !running.immediate && !planned && running.rotation.window) {
    throw new ConflictError(
      `a scheduled rotation of ${secretName} (run ${active.id}) waits for its window: cancel it to rotate now, or let it run`,
      { retryable: false, metadata: { runId: active.id } },
    );
  }
}

/** What announcing a finished rotation needs. */
export interface AnnounceDeps {
  notifier: Notifier;
  idempotency: IdempotencyStore;
  audit: AuditLog;
  clock: Clock;
  environment: string;
  idempotencyTtlMs: number;
  claimLeaseMs: number;
}

/**
 * Tells the secret's channels what a rotation changed, and audits it (`rotation.complete`), at most
 * once per run (its own idempotency key; a retry sends only the channels that did not get it).
 */
export async function announceRotation(
  run: Readonly<Run>,
  summary: RotationSummary,
  deps: AnnounceDeps,
  abortSignal?: AbortSignal,
): Promise<void> {
  const input = run.input as RotationInput;
  const what = summary.dryRun
    ? 'Rotation planned'
    : summary.phase === 'rotate'
      ? 'Rotated'
      : 'Consumers rolled';
  const title = `${what}: ${summary.secret} in ${summary.vault}`;
  const notification: Notification = {
    id: stableHash('rotation-done', run.id),
    type: summary.dryRun ? 'com.stampkeeper.rotation.planned' : 'com.stampkeeper.rotation.completed',
    subject: run.target,
    severity: 'info',
    title,
    summary: summary.dryRun
      ? `A dry run planned every step of the rotation of ${summary.secret} and changed nothing.`
      : `Version ${summary.version} of ${summary.secret} holds the ${summary.slot} key of ${summary.resourceId}` +
        `${summary.expiresOn ? ` and expires on ${summary.expiresOn}` : ''}. ` +
        `Consumers on it: ${summary.consumers.join(', ') || 'none configured'}. ` +
        (summary.revoked
          ? `The old ${summary.revoked} key was regenerated (revoked).`
          : 'The old key stays valid as the next standby.'),
    facts: {
      Vault: summary.vault,
      Secret: summary.secret,
      Version: summary.version,
      Key: summary.slot,
      Provider: summary.provider,
      Consumers: summary.consumers.join(', ') || 'none',
      Revoked: summary.revoked ?? 'no',
      Run: run.id,
      Environment: deps.environment,
    },
    correlationId: run.correlationId,
    time: deps.clock.now(),
    data: { ...summary, runId: run.id, environment: deps.environment },
  };
  await runOnce<ChannelResult[]>(
    deps.idempotency,
    `rotation-done|${run.id}`,
    {
      owner: `rotation-finish:${run.id}:${run.ticket}`,
      ttlMs: deps.idempotencyTtlMs,
      leaseMs: deps.claimLeaseMs,
      busyMessage: `the rotation ${run.id} is being announced by another attempt`,
      summarize: (results) => results,
      abortSignal,
    },
    async (once: OnceWork) => {
      const results = await sendToChannelsOnce(notification, input.channels, deps, once, { abortSignal });
      const transient = results.filter((r) => r.status === 'failed' && r.retryable);
      if (transient.length > 0) {
        throw new TransientError(
          `notifying ${transient.map((r) => r.channel).join(', ')} failed; the step retries`,
        );
      }
      await deps.audit.append(
        {
          id: stableHash('rotation-complete', run.id),
          time: deps.clock.now(),
          actor: run.actor,
          action: 'rotation.complete',
          target: run.target,
          outcome: summary.dryRun ? 'planned' : 'succeeded',
          correlationId: run.correlationId,
          runId: run.id,
          after: { ...summary, channels: results },
        },
        { abortSignal },
      );
      return results;
    },
  );
}

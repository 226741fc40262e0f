/**
 * Zero-downtime rotation of a dual-key credential, as a run of the step machine (`rotation`): plan
 * (which key is active, which is standby) → [approval] → regenerate the standby key → test it on the
 * data plane → publish it as a new Key Vault version → roll the consumers → verify them → (revoke
 * mode) regenerate the old key → finish (audit, notification). Every step checks the remote state
 * before it acts, so a retry after a crash at any point never regenerates a key twice, never
 * publishes an untested key, and never regenerates a key a consumer may still use.
 *
 * Keys and versions are told apart by fingerprints (`keyFingerprint`): a short hash, never a value.
 * A key value lives in memory between the provider's listing and the Key Vault write, registered
 * with the redactor; it is never in a run's input, output, log, audit record or notification.
 */

import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { type ConsumerPolicy, consumerName, type KeyRotationPolicy, revokeProblems } from '../config/policy';
import { ConfigurationError, TransientError, ValidationError } from '../core/errors';
import { redactText } from '../core/redact';
import type { Consumer, ConsumerRoller, RollHandle } from '../ports/consumers';
import {
  type KeyPair,
  type KeyProvider,
  type KeySlot,
  keyFingerprint,
  keyInSecretValue,
} from '../ports/keys';
import type { SecretProperties, SecretVault } from '../ports/secrets';
import type { RunKindDefinition, StepContext, StepResult } from '../runs';
import type { JsonObject, Run } from '../runs/types';

export const ROTATION_KIND = 'rotation';

/** Tags stampkeeper keeps on every Key Vault version it publishes (names and fingerprints, never a value). */
export const TAGS = {
  provider: 'stampkeeper-provider',
  resource: 'stampkeeper-resource',
  slot: 'stampkeeper-key',
  fingerprint: 'stampkeeper-fingerprint',
  run: 'stampkeeper-run',
  rolled: 'stampkeeper-rolled',
} as const;

/** Key Vault allows 15 tags per version: the rotation writes six, the rest is the secret's own. */
const MAX_CARRIED_TAGS = 15 - 6;

/** Longest a rotation may take, waits for its window and for consumers included. */
export const ROTATION_DEADLINE_MS = 3 * 86_400_000;
const APPROVAL_EXPIRES_MS = 24 * 3_600_000;
/** How often a roll in progress is looked at. */
const ROLL_POLL_MS = 15_000;
const HOUR_MS = 3_600_000;

/** What a rotation run carries (JSON, no secret): the secret, its policy at start, why it runs. */
export interface RotationInput extends JsonObject {
  vaultUrl: string;
  vaultName: string;
  secretName: string;
  rotation: KeyRotationPolicy & JsonObject;
  /** What started it: `event` (Key Vault), `sweep` (the timer), `manual` (a person or a pipeline). */
  trigger: 'event' | 'sweep' | 'manual';
  /** On-demand and already-expired rotations do not wait for the window. */
  immediate: boolean;
  /** Channels of the secret (the policy's), for notices. */
  channels: string[];
  /** A rotation that resumes a halted one names it. */
  resumes: string | null;
  /**
   * The fingerprint of the standby key the resumed run regenerated and never published (its test
   * gave up: a key slow to propagate, say), or null: the resumption tests and publishes that key
   * instead of regenerating it again (which would start its propagation over).
   */
  resumedStandby?: string | null;
}

/** What the rotation steps need; built once per process (`AppDeps`). */
export interface RotationDeps {
  vault: SecretVault;
  /** The key provider of a rotation policy (its provider and key pair). */
  keys(rotation: KeyRotationPolicy): KeyProvider;
  /** The roller of a consumer's kind. */
  rollerFor(consumer: Consumer): ConsumerRoller;
  /** The value of an app setting (webhook and health URLs of consumers: secrets, never stored in a run). */
  settingValue(name: string): string | undefined;
  /**
   * Registers the callback of a consumer whose webhook completes by callback, before the webhook is
   * called: the URL to give it (carrying a one-time token: never stored in a run) and the id the
   * roll's handle keeps. Absent: the app has no callback endpoint, and such a roll fails clearly.
   */
  registerCallback?(
    runId: string,
    consumer: string,
    abortSignal?: AbortSignal,
  ): Promise<{ id: string; url: string }>;
  /** Why `registerCallback` cannot give a callback URL now (the app's host name unknown), if so. */
  callbackProblem?(): string | undefined;
  /**
   * Tells the secret's channels what a finished rotation changed (names, versions, slots; never a
   * value), at most once per run.
   */
  announce(run: Readonly<Run>, summary: RotationSummary, abortSignal?: AbortSignal): Promise<void>;
}

/** What a finished rotation changed, as its notification and audit record say it. */
export interface RotationSummary extends JsonObject {
  secret: string;
  vault: string;
  provider: string;
  resourceId: string;
  phase: 'rotate' | 'rollOnly';
  /** The version consumers now run on. */
  version: string;
  /** The key that version holds. */
  slot: KeySlot;
  expiresOn: string | null;
  consumers: string[];
  /** The key regenerated at the end (revoke mode), or null. */
  revoked: KeySlot | null;
  dryRun: boolean;
}

interface PlanOutput {
  phase: 'rotate' | 'rollOnly';
  activeSlot: KeySlot;
  standbySlot: KeySlot;
  currentVersion: string;
  activeFingerprint: string;
  standbyFingerprint: string;
  /**
   * The current version was never verified on every consumer (onboarded by hand, or switched by
   * hand mid-way through the manual procedure): the consumers are rolled onto it, and verified,
   * before anything is regenerated, since some may still hold the standby key.
   */
  rollFirst: boolean;
}

/** Rolls started so far onto one version: each handle is recorded as soon as its roll started. */
interface RollProgress extends JsonObject {
  version: string;
  handles: Array<{ consumer: string; handle: RollHandle & JsonObject }>;
}

/** The plan step's own record while it rolls the consumers onto the current version first. */
interface PlanProgress extends JsonObject {
  plan: PlanOutput & JsonObject;
  preroll: RollProgress;
}

const other = (slot: KeySlot): KeySlot => (slot === 'primary' ? 'secondary' : 'primary');

function inputOf(run: Readonly<Run>): RotationInput {
  return run.input as RotationInput;
}

/**
 * What the running step recorded in an earlier execution (a `wait` with output): the progress of
 * a step that acts on several things one execution at a time.
 */
function ownOutput<T>(run: Readonly<Run>): T | undefined {
  return run.steps[run.currentStep]?.output as T | undefined;
}

function planOf(ctx: StepContext): PlanOutput {
  const plan = ctx.outputs.plan as PlanOutput | undefined;
  if (!plan) throw new ValidationError('the rotation has no plan', ['outputs.plan']);
  return plan;
}

/** Whether `now` is inside a UTC window (`endHour` < `startHour` wraps midnight). */
export function inWindow(now: Date, window: { startHour: number; endHour: number }): boolean {
  const hour = now.getUTCHours();
  const { startHour, endHour } = window;
  return startHour < endHour ? hour >= startHour && hour < endHour : hour >= startHour || hour < endHour;
}

/** Milliseconds from `now` to the next start of the window (0 inside it). */
export function untilWindow(now: Date, window: { startHour: number; endHour: number }): number {
  if (inWindow(now, window)) return 0;
  const start = new Date(now);
  start.setUTCMinutes(0, 0, 0);
  start.setUTCHours(window.startHour);
  if (start.getTime() <= now.getTime()) start.setTime(start.getTime() + 24 * HOUR_MS);
  return start.getTime() - now.getTime();
}

/** The port's view of a policy consumer: URLs read from settings here, never stored in a run. */
export function consumerOf(
  policy: ConsumerPolicy,
  settingValue: (name: string) => string | undefined,
): Consumer {
  const name = consumerName(policy);
  const url = (setting: string) => {
    const value = settingValue(setting);
    if (!value) throw new ConfigurationError(`consumer ${name}: setting ${setting} is not set`);
    return value;
  };
  const health = (setting: string | undefined) => (setting ? { healthUrl: url(setting) } : {});
  switch (policy.type) {
    case 'aksDeployment':
      return {
        name,
        target: {
          kind: 'aksDeployment',
          clusterId: policy.clusterId,
          namespace: policy.namespace,
          deployment: policy.deployment,
          timeoutSeconds: policy.timeoutMinutes * 60,
        },
        ...health(policy.healthUrlSetting),
      };
    case 'containerApp':
      return {
        name,
        target: { kind: 'containerApp', appId: policy.resourceId },
        ...health(policy.healthUrlSetting),
      };
    case 'appService':
      return {
        name,
        target: { kind: 'webApp', siteId: policy.resourceId },
        ...health(policy.healthUrlSetting),
      };
    case 'webhook':
      return {
        name,
        target: {
          kind: 'webhook',
          url: url(policy.urlSetting),
          completion: policy.completion === 'callback' ? 'callback' : 'polling',
        },
      };
    case 'waitForReload':
      return {
        name,
        target: { kind: 'reload', waitSeconds: policy.waitMinutes * 60 },
        ...health(policy.healthUrlSetting),
      };
  }
}

/** The AKS run command's longest `kubectl rollout status --timeout` (the roller's bound). */
const AKS_MAX_TIMEOUT_MINUTES = 60;

/**
 * Why the consumers of a rotation cannot be rolled as configured (a URL setting unset, a callback
 * webhook without the app's callback endpoint, a limit an adapter refuses), every problem at once.
 * Checked by the plan step and by an on-demand start, before any key changes: found after the
 * regeneration, such a problem would halt the secret mid-way.
 */
export function consumerProblems(
  rotation: Pick<KeyRotationPolicy, 'consumers'>,
  deps: Pick<RotationDeps, 'settingValue' | 'registerCallback' | 'callbackProblem'>,
): string[] {
  const problems: string[] = [];
  for (const policy of rotation.consumers) {
    try {
      const consumer = consumerOf(policy, deps.settingValue);
      if (consumer.target.kind === 'webhook' && consumer.target.completion === 'callback') {
        const why = deps.registerCallback ? deps.callbackProblem?.() : 'this app has no callback endpoint';
        if (why) problems.push(`consumer ${consumer.name} completes by callback, and ${why}`);
      }
    } catch (error) {
      problems.push(error instanceof Error ? error.message : String(error));
    }
    if (policy.type === 'aksDeployment' && policy.timeoutMinutes > AKS_MAX_TIMEOUT_MINUTES) {
      problems.push(
        `consumer ${consumerName(policy)}: timeoutMinutes ${policy.timeoutMinutes} is more than the ${AKS_MAX_TIMEOUT_MINUTES} an AKS run command allows`,
      );
    }
  }
  return problems;
}

/**
 * Why a revoke of a secret is refused: the consumers whose roll would not prove they moved (the
 * same words for `POST /api/rotations` and for the plan of a revoke started another way).
 */
export function revokeRefusal(secretName: string, unproven: string[]): string {
  return `revoke regenerates the old key of ${secretName} only once every consumer proves it moved, and nothing would prove it for ${unproven.join('; ')}`;
}

/** Where a consumer's secret URL stood in a stored roll handle. */
const URL_MARK = '{consumer-url}';
/** A reference sealed with the consumer's webhook URL (a status URL with its own credential). */
const SEALED_MARK = '{sealed}';

/**
 * The key that seals a webhook roll's references: derived from the webhook's URL, a secret kept in
 * the app's settings and never in a run, so a sealed reference in a run reveals nothing.
 */
function sealingKey(consumer: Consumer): Buffer | undefined {
  if (consumer.target.kind !== 'webhook') return undefined;
  return createHash('sha256').update(`stampkeeper-roll-handle\n${consumer.target.url}`, 'utf8').digest();
}

function seal(value: string, key: Buffer): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  const sealed = Buffer.concat([cipher.update(value, 'utf8'), cipher.final()]);
  return `${SEALED_MARK}${Buffer.concat([iv, cipher.getAuthTag(), sealed]).toString('base64url')}`;
}

function unseal(value: string, key: Buffer | undefined, consumer: string): string {
  try {
    if (!key) throw new Error('no key');
    const bytes = Buffer.from(value.slice(SEALED_MARK.length), 'base64url');
    const decipher = createDecipheriv('aes-256-gcm', key, bytes.subarray(0, 12));
    decipher.setAuthTag(bytes.subarray(12, 28));
    return Buffer.concat([decipher.update(bytes.subarray(28)), decipher.final()]).toString('utf8');
  } catch {
    throw new ConfigurationError(
      `consumer ${consumer}: its roll's status URL cannot be read back: the webhook URL setting changed since the roll started`,
    );
  }
}

/** The consumer's secret URLs (webhook, health): never stored in a run. */
function secretUrlsOf(consumer: Consumer): string[] {
  const urls = consumer.target.kind === 'webhook' ? [consumer.target.url] : [];
  if (consumer.healthUrl) urls.push(consumer.healthUrl);
  return urls.sort((a, b) => b.length - a.length);
}

/**
 * A roll handle as a run may store it: a reference under one of the consumer's secret URLs (a
 * webhook's status `Location`) keeps only its part after that URL, which the URL (a credential)
 * is put back before at read time (`usableHandle`). A reference elsewhere that carries a credential
 * of its own (a Logic Apps status URL and its `sig`, which the run store would redact and so
 * break) is sealed with a key derived from the webhook's URL, and unsealed at read time.
 */
function storableHandle(handle: RollHandle, consumer: Consumer): RollHandle {
  const urls = secretUrlsOf(consumer);
  const key = sealingKey(consumer);
  const ref: Record<string, string> = {};
  for (const [name, value] of Object.entries(handle.ref)) {
    const base = urls.find((url) => value.startsWith(url));
    if (base) ref[name] = `${URL_MARK}${value.slice(base.length)}`;
    else if (key && redactText(value) !== value) ref[name] = seal(value, key);
    else ref[name] = value;
  }
  return { ...handle, ref };
}

function usableHandle(handle: RollHandle, consumer: Consumer): RollHandle {
  const [base] = consumer.target.kind === 'webhook' ? [consumer.target.url] : secretUrlsOf(consumer);
  const ref: Record<string, string> = {};
  for (const [name, value] of Object.entries(handle.ref)) {
    if (base && value.startsWith(URL_MARK)) ref[name] = `${base}${value.slice(URL_MARK.length)}`;
    else if (value.startsWith(SEALED_MARK)) ref[name] = unseal(value, sealingKey(consumer), consumer.name);
    else ref[name] = value;
  }
  return { ...handle, ref };
}

/** How long a consumer's roll may take before the rotation gives up on it. */
function rollTimeoutMs(policy: ConsumerPolicy): number {
  switch (policy.type) {
    case 'waitForReload':
      return (policy.waitMinutes + 10) * 60_000;
    default:
      return policy.timeoutMinutes * 60_000;
  }
}

/** A failure a person must look at: the run stops (no retry), the secret is halted. */
function stop(code: string, message: string): StepResult {
  return { status: 'fail', error: { code, message } };
}

/** Why a secret cannot be rotated as it stands: a stable code and a message naming it (no value). */
export interface RotationRefusal {
  code: 'SecretMissing' | 'CertificateManaged' | 'TagsMissing' | 'TagsMalformed' | 'TagsDisagree';
  message: string;
}

/**
 * What the current version's tags say (the key it holds), or why the secret cannot be rotated:
 * no version, a certificate-backed secret, missing or malformed tags, tags naming another
 * provider or resource. Reads nothing: the plan step and `POST /api/rotations` both call it.
 */
export function checkRotatable(
  current: SecretProperties | undefined,
  secret: {
    vaultName: string;
    secretName: string;
    rotation: Pick<KeyRotationPolicy, 'provider' | 'resourceId'>;
  },
): { ok: true; slot: KeySlot; version: string } | ({ ok: false } & RotationRefusal) {
  const where = `${secret.secretName} in ${secret.vaultName}`;
  const refuse = (code: RotationRefusal['code'], message: string) => ({ ok: false as const, code, message });
  if (!current?.version) return refuse('SecretMissing', `secret ${where} has no version to rotate`);
  if (current.managed) {
    return refuse(
      'CertificateManaged',
      `secret ${where} belongs to a Key Vault certificate: renewed by its policy, never rotated`,
    );
  }
  const tags = current.tags ?? {};
  const how = `tag the current version with ${TAGS.provider}=${secret.rotation.provider}, ${TAGS.resource}=<the resource id> and ${TAGS.slot}=primary|secondary (the key it holds): docs/deploy.md`;
  const missing = [TAGS.provider, TAGS.resource, TAGS.slot].filter((t) => !tags[t]);
  if (missing.length > 0) {
    return refuse(
      'TagsMissing',
      `secret ${where}: version ${current.version} lacks ${missing.join(', ')}; ${how}`,
    );
  }
  const slot = tags[TAGS.slot];
  if (slot !== 'primary' && slot !== 'secondary') {
    return refuse('TagsMalformed', `secret ${where}: ${TAGS.slot} must be primary or secondary; ${how}`);
  }
  if (tags[TAGS.provider] !== secret.rotation.provider) {
    return refuse(
      'TagsDisagree',
      `secret ${where}: ${TAGS.provider} says ${tags[TAGS.provider]}, the policy ${secret.rotation.provider}`,
    );
  }
  if (tags[TAGS.resource]!.toLowerCase() !== secret.rotation.resourceId.toLowerCase()) {
    return refuse('TagsDisagree', `secret ${where}: ${TAGS.resource} names another resource than the policy`);
  }
  return { ok: true, slot, version: current.version };
}

/**
 * The `rotation` run kind. One run per secret at a time (exclusive target); approval before the
 * first change when the policy asks; notices of failures and parks go to the secret's channels.
 */
export function rotationKind(deps: RotationDeps): RunKindDefinition {
  const plan = async (run: Readonly<Run>, ctx: StepContext): Promise<StepResult> => {
    const input = inputOf(run);
    const progress = ownOutput<PlanProgress>(run);
    if (progress?.preroll) return rollFirst(run, ctx, progress);
    const current = await deps.vault.getSecretProperties(input.vaultUrl, input.secretName, {
      abortSignal: ctx.abortSignal,
    });
    const { window } = input.rotation;
    if (window && !input.immediate && !ctx.dryRun) {
      // A scheduled rotation waits for its window, but never past the expiry: an expired secret
      // does not wait (the wait ends at the expiry, and the plan then goes on).
      const untilExpiry = current?.expiresOn ? current.expiresOn.getTime() - ctx.now.getTime() : Infinity;
      const wait = Math.min(untilWindow(ctx.now, window), Math.max(0, untilExpiry));
      if (wait > 0) return { status: 'wait', delayMs: wait };
    }
    const tags = checkRotatable(current, input);
    if (!tags.ok) return stop(tags.code, tags.message);
    // Every consumer is built (its settings read, its limits checked) before anything changes: a
    // missing setting found after the key was regenerated would halt the secret mid-way.
    const misconfigured = consumerProblems(input.rotation, deps);
    if (misconfigured.length > 0) {
      return stop('ConsumerMisconfigured', `nothing changed: ${misconfigured.join('; ')}`);
    }
    // However the revoke was started (a resumption keeps the failed run's mode, a policy edited
    // since): regenerating the old key needs every consumer's roll to prove the move.
    const unproven = input.rotation.mode === 'revoke' ? revokeProblems(input.rotation) : [];
    if (unproven.length > 0) {
      return stop('RevokeUnproven', `nothing changed: ${revokeRefusal(input.secretName, unproven)}`);
    }
    const keys = await deps.keys(input.rotation).listKeys(input.rotation.resourceId, {
      abortSignal: ctx.abortSignal,
    });
    const active = keys[tags.slot];
    const standby = keys[other(tags.slot)];
    const held = await heldKey(current!, keys, ctx);
    if (held !== tags.slot) {
      const where = `${input.secretName} in ${input.vaultName}`;
      if (held !== undefined) {
        return stop(
          'TagsDisagree',
          `secret ${where}: version ${tags.version} is tagged ${TAGS.slot}=${tags.slot} but holds the ${held} key of ${input.rotation.resourceId}: regenerating the ${held} key would cut its consumers off. Correct the tag (docs/deploy.md)`,
        );
      }
      if (current!.tags[TAGS.fingerprint]) {
        return stop(
          'ActiveKeyChanged',
          `the ${tags.slot} key of ${input.rotation.resourceId} is not the one version ${tags.version} holds: it was regenerated outside stampkeeper; consumers may already be failing`,
        );
      }
      return stop(
        'KeyUnknown',
        `secret ${where}: version ${tags.version} holds neither key of ${input.rotation.resourceId} (regenerated outside stampkeeper, or the secret is another resource's key): nothing to rotate safely`,
      );
    }
    // A version never verified on every consumer: they may still use the other key, so nothing may
    // be regenerated before they are rolled onto this version. Published by an earlier rotation
    // (a resumption): rolling them is all that is left. Onboarded or switched by hand: they are
    // rolled first, and the rotation then goes on.
    const verified = Boolean(current!.tags[TAGS.rolled]);
    const published = Boolean(current!.tags[TAGS.run]);
    const output: PlanOutput = {
      phase: !verified && published ? 'rollOnly' : 'rotate',
      activeSlot: tags.slot,
      standbySlot: other(tags.slot),
      currentVersion: tags.version,
      activeFingerprint: active.fingerprint,
      standbyFingerprint: standby.fingerprint,
      rollFirst: !verified && !published && input.rotation.consumers.length > 0,
    };
    ctx.logger.info('rotation planned', { ...output, provider: input.rotation.provider });
    if (output.rollFirst && !ctx.dryRun) {
      return rollFirst(run, ctx, {
        plan: output as PlanOutput & JsonObject,
        preroll: { version: tags.version, handles: [] },
      });
    }
    return { status: 'done', output };
  };

  /**
   * The plan of a version never verified on its consumers: roll them onto it (one start per
   * execution, each handle recorded at once), wait until each runs on it, mark it rolled, and only
   * then hand the plan on. A consumer that fails to move stops the run before any key changed.
   */
  const rollFirst = async (
    run: Readonly<Run>,
    ctx: StepContext,
    progress: PlanProgress,
  ): Promise<StepResult> => {
    const started = await startNextRoll(run, ctx, progress.preroll);
    if (started !== 'all')
      return started === 'started' ? { status: 'wait', delayMs: 0, output: progress } : started;
    const observed = await observeRolls(run, ctx, progress.preroll, 'nothing was regenerated');
    if ('result' in observed) return observed.result;
    if (observed.running > 0) return { status: 'wait', delayMs: observed.nextMs, output: progress };
    await markRolled(run, ctx, progress.preroll.version);
    return { status: 'done', output: { ...progress.plan, rolledFirst: observed.states } };
  };

  /**
   * Which key of the pair a version holds: from the fingerprint stampkeeper tagged it with when it
   * published it, else (a version onboarded by hand) from its value, read once and only
   * fingerprinted. `undefined`: neither key.
   */
  const heldKey = async (
    version: SecretProperties,
    keys: KeyPair,
    ctx: StepContext,
  ): Promise<KeySlot | undefined> => {
    let fingerprint = version.tags[TAGS.fingerprint];
    if (!fingerprint) {
      const { value } = await deps.vault.getSecret(version.vaultUrl, version.name, {
        version: version.version,
        abortSignal: ctx.abortSignal,
      });
      fingerprint = keyFingerprint(keyInSecretValue(value));
    }
    if (fingerprint === keys.primary.fingerprint) return 'primary';
    if (fingerprint === keys.secondary.fingerprint) return 'secondary';
    return undefined;
  };

  const regenerate = async (run: Readonly<Run>, ctx: StepContext): Promise<StepResult> => {
    const input = inputOf(run);
    const p = planOf(ctx);
    if (p.phase === 'rollOnly') return { status: 'skip' };
    if (ctx.dryRun) return { status: 'done', output: { planned: `regenerate the ${p.standbySlot} key` } };
    const provider = deps.keys(input.rotation);
    const keys = await provider.listKeys(input.rotation.resourceId, { abortSignal: ctx.abortSignal });
    const standby = keys[p.standbySlot];
    // Check, then act: an earlier attempt that regenerated and crashed left a new standby key; a
    // resumed run's regeneration that was never published is that key too.
    if (standby.fingerprint !== p.standbyFingerprint || standby.fingerprint === input.resumedStandby) {
      return {
        status: 'done',
        output: { slot: p.standbySlot, fingerprint: standby.fingerprint, already: true },
      };
    }
    const fresh = await provider.regenerateKey(input.rotation.resourceId, p.standbySlot, {
      abortSignal: ctx.abortSignal,
    });
    return { status: 'done', output: { slot: p.standbySlot, fingerprint: fresh.fingerprint } };
  };

  const test = async (run: Readonly<Run>, ctx: StepContext): Promise<StepResult> => {
    const input = inputOf(run);
    const p = planOf(ctx);
    if (p.phase === 'rollOnly') return { status: 'skip' };
    if (ctx.dryRun) return { status: 'done', output: { planned: 'test the new key on the data plane' } };
    const regenerated = ctx.outputs.regenerate as { fingerprint: string };
    const provider = deps.keys(input.rotation);
    const keys = await provider.listKeys(input.rotation.resourceId, {
      withValues: true,
      abortSignal: ctx.abortSignal,
    });
    const standby = keys[p.standbySlot];
    if (standby.fingerprint !== regenerated.fingerprint || !standby.value) {
      return stop(
        'StandbyChanged',
        `the ${p.standbySlot} key changed again since it was regenerated: nothing published`,
      );
    }
    const result = await provider.testKey(input.rotation.resourceId, standby.value, {
      abortSignal: ctx.abortSignal,
    });
    if (!result.accepted) {
      // New keys take a moment to reach every replica: retried with backoff, never published untested.
      throw new TransientError(`the new ${p.standbySlot} key is not accepted yet (${result.detail})`);
    }
    return { status: 'done', output: { accepted: true, detail: result.detail } };
  };

  const publish = async (run: Readonly<Run>, ctx: StepContext): Promise<StepResult> => {
    const input = inputOf(run);
    const p = planOf(ctx);
    if (p.phase === 'rollOnly') return { status: 'skip' };
    if (ctx.dryRun)
      return {
        status: 'done',
        output: { planned: `publish a new version holding the ${p.standbySlot} key` },
      };
    // Check, then act: a version this run published before a crash is found by its run tag (every
    // version is looked at: one created in the same second as another cannot be told apart by date).
    const versions: SecretProperties[] = [];
    for await (const v of deps.vault.listSecretVersions(input.vaultUrl, input.secretName, {
      abortSignal: ctx.abortSignal,
    })) {
      versions.push(v);
    }
    const mine = versions.find((v) => v.tags[TAGS.run] === run.id);
    if (mine) {
      return {
        status: 'done',
        output: { version: mine.version!, expiresOn: mine.expiresOn?.toISOString() ?? null, already: true },
      };
    }
    const regenerated = ctx.outputs.regenerate as { fingerprint: string };
    const provider = deps.keys(input.rotation);
    const keys = await provider.listKeys(input.rotation.resourceId, {
      withValues: true,
      abortSignal: ctx.abortSignal,
    });
    const standby = keys[p.standbySlot];
    if (standby.fingerprint !== regenerated.fingerprint || !standby.value) {
      return stop(
        'StandbyChanged',
        `the ${p.standbySlot} key changed since it was tested: nothing published`,
      );
    }
    const value =
      input.rotation.publish === 'connectionString'
        ? provider.connectionString(input.rotation.resourceId, standby.value)
        : standby.value;
    const expiresOn = new Date(ctx.now.getTime() + input.rotation.validityDays * 86_400_000);
    // The secret's own tags (owner, cost centre...) stay on the new version; the rotation's marks
    // of the old one do not.
    const previous = versions.find((v) => v.version === p.currentVersion);
    const own = Object.entries(previous?.tags ?? {})
      .filter(([name]) => !name.startsWith('stampkeeper-'))
      .sort(([a], [b]) => a.localeCompare(b));
    if (own.length > MAX_CARRIED_TAGS) {
      ctx.logger.warn('tags left off the new version (Key Vault keeps 15 per version)', {
        dropped: own.slice(MAX_CARRIED_TAGS).map(([name]) => name),
      });
    }
    const published = await deps.vault.setSecret(input.vaultUrl, input.secretName, value, {
      expiresOn,
      contentType: input.rotation.publish === 'connectionString' ? 'connection-string' : 'key',
      tags: {
        ...Object.fromEntries(own.slice(0, MAX_CARRIED_TAGS)),
        [TAGS.provider]: input.rotation.provider,
        [TAGS.resource]: input.rotation.resourceId,
        [TAGS.slot]: p.standbySlot,
        [TAGS.fingerprint]: standby.fingerprint,
        [TAGS.run]: run.id,
      },
      abortSignal: ctx.abortSignal,
    });
    return { status: 'done', output: { version: published.version, expiresOn: expiresOn.toISOString() } };
  };

  const versionToRoll = (ctx: StepContext): string => {
    const published = ctx.outputs.publish as { version?: string } | undefined;
    return published?.version ?? planOf(ctx).currentVersion;
  };

  /**
   * Starts the roll of the first consumer not started yet onto `progress.version` and records its
   * handle in `progress`: `started` (the caller records it with a `wait` at once, so a retry after
   * a crash never restarts a consumer whose roll was recorded: a start is not idempotent),
   * `all` when every consumer's roll was started, or the result that stops the run.
   */
  const startNextRoll = async (
    run: Readonly<Run>,
    ctx: StepContext,
    progress: RollProgress,
  ): Promise<'started' | 'all' | StepResult> => {
    const input = inputOf(run);
    const policy = input.rotation.consumers.find(
      (c) => !progress.handles.some((h) => h.consumer === consumerName(c)),
    );
    if (!policy) return 'all';
    const consumer = consumerOf(policy, deps.settingValue);
    let callback: { id: string; url: string } | undefined;
    if (consumer.target.kind === 'webhook' && consumer.target.completion === 'callback') {
      if (!deps.registerCallback) {
        return stop(
          'CallbackUnavailable',
          `consumer ${consumer.name} completes by callback, and this app has no callback endpoint: nothing rolled`,
        );
      }
      callback = await deps.registerCallback(run.id, consumer.name, ctx.abortSignal);
    }
    const handle = await deps.rollerFor(consumer).start(consumer, {
      secretVersion: progress.version,
      secret: { vaultUrl: input.vaultUrl, name: input.secretName },
      ...(callback ? { callbackUrl: callback.url } : {}),
      abortSignal: ctx.abortSignal,
    });
    const stored = storableHandle(handle, consumer);
    // The roll's callback record, by id: the token in its URL is never kept in the run.
    if (callback) stored.ref = { ...stored.ref, callback: callback.id };
    progress.handles.push({ consumer: consumer.name, handle: stored as RollHandle & JsonObject });
    return 'started';
  };

  /** Where every started roll stands: how many still run, or the result that stops the run. */
  const observeRolls = async (
    run: Readonly<Run>,
    ctx: StepContext,
    rolled: RollProgress,
    unchanged: string,
  ): Promise<
    { result: StepResult } | { running: number; states: Record<string, string>; nextMs: number }
  > => {
    const input = inputOf(run);
    const states: Record<string, string> = {};
    let running = 0;
    let nextMs = Number.POSITIVE_INFINITY;
    for (const policy of input.rotation.consumers) {
      const consumer = consumerOf(policy, deps.settingValue);
      const entry = rolled.handles.find((h) => h.consumer === consumer.name);
      if (!entry) return { result: stop('RollMissing', `consumer ${consumer.name} was never rolled`) };
      const status = await deps.rollerFor(consumer).status(consumer, usableHandle(entry.handle, consumer), {
        secretVersion: rolled.version,
        secret: { vaultUrl: input.vaultUrl, name: input.secretName },
        abortSignal: ctx.abortSignal,
      });
      if (status.state === 'failed') {
        return {
          result: stop(
            'RollFailed',
            `consumer ${consumer.name} did not move to version ${rolled.version}: ${status.reason}. The old key is still valid and ${unchanged}.`,
          ),
        };
      }
      if (status.state === 'running') {
        const started = Date.parse(entry.handle.startedAt);
        if (ctx.now.getTime() - started > rollTimeoutMs(policy)) {
          return {
            result: stop(
              'RollTimedOut',
              `consumer ${consumer.name} still rolling after ${rollTimeoutMs(policy) / 60_000} minutes: ${unchanged}`,
            ),
          };
        }
        running++;
        // A consumer that reloads by itself is not done before its configured wait: looked at
        // again when that wait ends, not every poll interval through a wait of up to a day.
        const settles =
          policy.type === 'waitForReload' ? started + policy.waitMinutes * 60_000 - ctx.now.getTime() : 0;
        nextMs = Math.min(nextMs, Math.max(ROLL_POLL_MS, settles));
      }
      states[consumer.name] = status.state;
    }
    return { running, states, nextMs: Number.isFinite(nextMs) ? nextMs : ROLL_POLL_MS };
  };

  /** Marks a version as running on every consumer, so a later rotation may regenerate the other key. */
  const markRolled = async (run: Readonly<Run>, ctx: StepContext, version: string): Promise<void> => {
    const input = inputOf(run);
    const current = await deps.vault.getSecretProperties(input.vaultUrl, input.secretName, {
      version,
      abortSignal: ctx.abortSignal,
    });
    if (current && !current.tags[TAGS.rolled]) {
      await deps.vault.updateSecretProperties(input.vaultUrl, input.secretName, version, {
        tags: { ...current.tags, [TAGS.rolled]: ctx.now.toISOString() },
        abortSignal: ctx.abortSignal,
      });
    }
  };

  const roll = async (run: Readonly<Run>, ctx: StepContext): Promise<StepResult> => {
    const input = inputOf(run);
    const version = versionToRoll(ctx);
    const names = input.rotation.consumers.map(consumerName);
    if (ctx.dryRun)
      return {
        status: 'done',
        output: { planned: `roll ${names.join(', ') || 'no consumer'} onto the new version` },
      };
    const recorded = ownOutput<RollProgress>(run);
    const progress: RollProgress = recorded?.version === version ? recorded : { version, handles: [] };
    const started = await startNextRoll(run, ctx, progress);
    // One start per execution, recorded by its wait before the next one: a crash or a transient
    // error on a later consumer never starts the earlier ones again.
    if (started === 'started') return { status: 'wait', delayMs: 0, output: progress };
    if (started !== 'all') return started;
    return { status: 'done', output: progress };
  };

  const verify = async (run: Readonly<Run>, ctx: StepContext): Promise<StepResult> => {
    if (ctx.dryRun)
      return { status: 'done', output: { planned: 'verify every consumer runs on the new version' } };
    const rolled = ctx.outputs.roll as RollProgress;
    const observed = await observeRolls(run, ctx, rolled, 'nothing was revoked');
    if ('result' in observed) return observed.result;
    if (observed.running > 0)
      return { status: 'wait', delayMs: observed.nextMs, output: { states: observed.states } };
    // Every consumer runs on this version: mark it, so a later rotation may regenerate the other key.
    await markRolled(run, ctx, rolled.version);
    return { status: 'done', output: { version: rolled.version, consumers: observed.states } };
  };

  const revoke = async (run: Readonly<Run>, ctx: StepContext): Promise<StepResult> => {
    const input = inputOf(run);
    if (input.rotation.mode !== 'revoke') return { status: 'skip' };
    const p = planOf(ctx);
    // The key the consumers left: the old active one, or (a roll-only resumption) the other slot.
    const oldSlot = p.phase === 'rotate' ? p.activeSlot : other(p.activeSlot);
    if (ctx.dryRun) return { status: 'done', output: { planned: `regenerate the old ${oldSlot} key` } };
    const provider = deps.keys(input.rotation);
    const keys = await provider.listKeys(input.rotation.resourceId, { abortSignal: ctx.abortSignal });
    const before = p.phase === 'rotate' ? p.activeFingerprint : p.standbyFingerprint;
    if (keys[oldSlot].fingerprint !== before) {
      return {
        status: 'done',
        output: { slot: oldSlot, fingerprint: keys[oldSlot].fingerprint, already: true },
      };
    }
    const fresh = await provider.regenerateKey(input.rotation.resourceId, oldSlot, {
      abortSignal: ctx.abortSignal,
    });
    return { status: 'done', output: { slot: oldSlot, fingerprint: fresh.fingerprint } };
  };

  const finish = async (run: Readonly<Run>, ctx: StepContext): Promise<StepResult> => {
    const input = inputOf(run);
    const p = planOf(ctx);
    const published = ctx.outputs.publish as { version?: string; expiresOn?: string | null } | undefined;
    const revoked = ctx.outputs.revoke as { slot?: KeySlot } | undefined;
    const summary: RotationSummary = {
      secret: input.secretName,
      vault: input.vaultName,
      provider: input.rotation.provider,
      resourceId: input.rotation.resourceId,
      phase: p.phase,
      version: published?.version ?? p.currentVersion,
      slot: p.phase === 'rotate' ? p.standbySlot : p.activeSlot,
      expiresOn: published?.expiresOn ?? null,
      consumers: input.rotation.consumers.map(consumerName),
      revoked: revoked?.slot ?? null,
      dryRun: run.dryRun,
    };
    await deps.announce(run, summary, ctx.abortSignal);
    return { status: 'done', output: summary };
  };

  return {
    kind: ROTATION_KIND,
    version: 1,
    target: { exclusive: true },
    deadlineMs: ROTATION_DEADLINE_MS,
    retry: { maxAttempts: 5, baseDelayMs: 10_000, maxDelayMs: 300_000 },
    channels: (run) => inputOf(run).channels,
    steps: [
      { name: 'plan', run: plan },
      {
        name: 'regenerate',
        run: regenerate,
        approval: {
          expiresAfterMs: APPROVAL_EXPIRES_MS,
          onExpiry: 'cancel',
          when: (run) => inputOf(run).rotation.approval === true && !run.dryRun,
        },
      },
      { name: 'test', run: test },
      { name: 'publish', run: publish },
      { name: 'roll', run: roll },
      { name: 'verify', run: verify },
      { name: 'revoke', run: revoke },
      { name: 'finish', run: finish },
    ],
  };
}

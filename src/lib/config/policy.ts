/**
 * The operations policy: one versioned YAML (or JSON) file that says what stampkeeper manages and
 * how. Validated against `policy/stampkeeper.policy.schema.json` (the same schema editors use) and
 * by the semantic checks below; every problem is reported with its path in the file.
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { ErrorObject } from 'ajv';
import { isNode, LineCounter, parseDocument } from 'yaml';
import policySchema from '../../../policy/stampkeeper.policy.schema.json';
import { ConfigurationError } from '../core/errors';
import { severityAtLeast } from '../notify/format';
import type { Severity } from '../ports/notifier';
import { ncrontabProblems } from './ncrontab';
import { normalizePlaybook, type Playbook, playbookProblems } from './playbooks';
import { validatePolicySchema as validateSchema } from './policySchemaValidator';

export type { Severity } from '../ports/notifier';

/** The consumers of a rotated credential, rolled onto the new key before the old one may go. */
export type ConsumerPolicy =
  | {
      type: 'aksDeployment';
      clusterId: string;
      namespace: string;
      deployment: string;
      timeoutMinutes: number;
      /** App setting holding a health URL checked after the roll. */
      healthUrlSetting?: string;
    }
  | { type: 'containerApp'; resourceId: string; timeoutMinutes: number; healthUrlSetting?: string }
  | { type: 'appService'; resourceId: string; timeoutMinutes: number; healthUrlSetting?: string }
  | {
      type: 'webhook';
      name: string;
      /** App setting holding the webhook URL (a secret). */
      urlSetting: string;
      completion: 'callback' | 'poll';
      timeoutMinutes: number;
    }
  | { type: 'waitForReload'; name: string; waitMinutes: number; healthUrlSetting?: string };

/** Providers that rotate a dual-key credential (regenerate, test, publish, roll, verify). */
export type KeyProvider = 'cosmosDbKeys' | 'storageAccountKeys' | 'serviceBusSasKeys';

/** Zero-downtime rotation of a dual-key credential (docs/policy.md). Defaults filled in. */
export interface KeyRotationPolicy {
  provider: KeyProvider;
  /** The resource whose keys rotate (Cosmos DB account, storage account, Service Bus SAS rule). */
  resourceId: string;
  /** Cosmos DB only: the read-write master keys or the read-only pair. */
  keyPair: 'readWrite' | 'readOnly';
  /** What a published version holds: the key, or its connection string. */
  publish: 'key' | 'connectionString';
  validityDays: number;
  mode: 'alternate' | 'revoke';
  approval: boolean;
  /** UTC hours in which scheduled rotations may start; absent: any time. */
  window?: { startHour: number; endHour: number };
  consumers: ConsumerPolicy[];
}

/** How a secret is rotated: `manual` (stampkeeper notifies, people rotate) or a key provider. */
export type RotationPolicy = { provider: 'manual' } | KeyRotationPolicy;
export type RotationProvider = RotationPolicy['provider'];

export interface ManagedSecret {
  /** The vault as written in the policy: a name or a URL. */
  vault: string;
  /** Normalised vault URL: `https://{name}.vault.azure.net`, lower-case host, no trailing slash. */
  vaultUrl: string;
  name: string;
  owner: string;
  /** Channel names; absent means `notifications.defaults`, empty means none. */
  notify?: string[];
  rotation: RotationPolicy;
}

/** An automatic replay rule of a dead-letter entity (`deadLetters[].replay.auto[]`). */
export interface AutoReplayRule {
  /** Matched (whole, case-insensitive) against DeadLetterReason. */
  reason: string;
  /** Matched (anywhere, case-insensitive) against DeadLetterErrorDescription, when given. */
  description?: string;
  delayMinutes: number;
  maxAttempts: number;
}

/** A queue or topic subscription whose dead-letter queue stampkeeper archives (docs/policy.md). Defaults filled in. */
export interface DeadLetterEntity {
  /** Short name: the API's `entity`, the archive ids' prefix, the alerts' subject. */
  name: string;
  /** ARM id of the Service Bus namespace. */
  namespaceId: string;
  /** The namespace's name (last segment of `namespaceId`). */
  namespace: string;
  /** Where its Azure Monitor metrics are read; absent: no metrics. */
  region?: string;
  /** The entity whose dead-letter queue is archived. */
  source: { queue: string } | { topic: string; subscription: string };
  /** `orders` or `events/Subscriptions/billing`, as Service Bus names the path. */
  path: string;
  /** A subscription's topic: every other subscription of the topic (for replay isolation). */
  topicSubscriptions: string[];
  /** Prefix of the connection settings (`<connection>__fullyQualifiedNamespace` or `<connection>`). */
  connection: string;
  owner: string;
  /** Channel names; absent means `notifications.defaults`, empty means none. */
  notify?: string[];
  alerts: { minIntervalMinutes: number; severity: Severity };
  replay: { maxReplays: number; targets: ReplayTargetEntity[]; auto: AutoReplayRule[] };
}

/** Another queue or topic a person may replay an entity's dead letters to. */
export interface ReplayTargetEntity {
  type: 'queue' | 'topic';
  name: string;
}

/** The connection setting prefix of dead-letter entities that name none. */
export const DEFAULT_SERVICE_BUS_CONNECTION = 'STAMPKEEPER_SERVICEBUS';
export type { Playbook } from './playbooks';

export interface Schedules {
  /** NCRONTAB (6 fields, UTC) of the safety-net sweep of managed secrets. */
  secretSweep: string;
  /** NCRONTAB of the timer that scales back what playbooks raised. */
  remediationScaleBack: string;
  /** NCRONTAB of the dead-letter depth report (default every 15 minutes). */
  deadLetterReport: string;
}

interface ChannelBase {
  name: string;
  /** Least severity this channel receives. */
  minSeverity: Severity;
}
/** CloudEvents to the topic in the `STAMPKEEPER_EVENTGRID_TOPIC_ENDPOINT` setting. */
export interface EventGridChannel extends ChannelBase {
  type: 'eventGrid';
}
/** An Adaptive Card posted to the Teams webhook URL held by the `urlSetting` app setting. */
export interface TeamsChannel extends ChannelBase {
  type: 'teams';
  urlSetting: string;
}
/** A JSON POST to the URL held by the `urlSetting` app setting. */
export interface WebhookChannel extends ChannelBase {
  type: 'webhook';
  urlSetting: string;
}
export type NotificationChannel = EventGridChannel | TeamsChannel | WebhookChannel;
export type ChannelType = NotificationChannel['type'];

export interface Notifications {
  defaults: string[];
  channels: NotificationChannel[];
}

/** Settings every scheduled check shares. */
export interface CheckBase {
  /** NCRONTAB (6 fields, UTC). */
  schedule: string;
  /** Channels told when a report needs a person; absent: `notifications.defaults`. */
  notify?: string[];
}

export interface BackupReadinessCheck extends CheckBase {
  cosmosDbAccounts: Array<{
    resourceId: string;
    maxIntervalMinutes: number;
    minRetentionHours: number;
    /** Acceptable periodic backup redundancies; absent: any. */
    redundancy?: string[];
    drill: { enabled: boolean; hoursAgo: number; targetAccountName?: string; location?: string };
  }>;
}

export interface QuotaHeadroomCheck extends CheckBase {
  warnAtPercent: number;
  criticalAtPercent: number;
  requestTargetPercent: number;
  quotas: Array<{ subscriptionId: string; provider: string; location: string; names: string[] }>;
}

export interface PlatformVersionsCheck extends CheckBase {
  aksClusters: string[];
  runtime: { enabled: boolean; warnDaysBeforeEnd: number; maxDataAgeDays: number };
}

export interface CredentialHygieneCheck extends CheckBase {
  /** Normalised vault URLs. */
  vaults: string[];
  maxValidityDays: number;
  cosmosDbAccounts: Array<{ resourceId: string; keyAuthReason?: string }>;
}

/** The scheduled maintenance checks the policy configures (docs/policy.md, "Maintenance checks"). */
export interface ChecksPolicy {
  /** Base URL of the runbooks reports link (ends with `/`); absent: `docs/runbooks/`. */
  runbookBaseUrl?: string;
  backupReadiness?: BackupReadinessCheck;
  quotaHeadroom?: QuotaHeadroomCheck;
  platformVersions?: PlatformVersionsCheck;
  credentialHygiene?: CredentialHygieneCheck;
}

export type CheckName = 'backupReadiness' | 'quotaHeadroom' | 'platformVersions' | 'credentialHygiene';
export const CHECK_NAMES: readonly CheckName[] = [
  'backupReadiness',
  'quotaHeadroom',
  'platformVersions',
  'credentialHygiene',
];
/** When each check runs when the policy gives no schedule. */
export const DEFAULT_CHECK_SCHEDULES: Record<CheckName, string> = {
  backupReadiness: '0 0 5 * * *',
  quotaHeadroom: '0 30 5 * * *',
  platformVersions: '0 0 6 * * 1',
  credentialHygiene: '0 0 7 * * *',
};

export interface MonitoringWorkspace {
  name: string;
  workspaceId: string;
  resourceId?: string;
}

export type ThresholdOperator =
  | 'lessThan'
  | 'lessThanOrEqual'
  | 'greaterThan'
  | 'greaterThanOrEqual'
  | 'equal';

export type GateCondition =
  | {
      name: string;
      type: 'logs';
      /** A workspace of `monitoring.workspaces`, by name. */
      workspace: string;
      query: string;
      column: string;
      operator: ThresholdOperator;
      threshold: number;
      minRows: number;
    }
  | {
      name: string;
      type: 'metric';
      /** An alias of the target's `resources`. */
      resource: string;
      namespace: string;
      metric: string;
      aggregation: 'Average' | 'Total' | 'Minimum' | 'Maximum' | 'Count';
      reduce: 'latest' | 'minimum' | 'maximum' | 'mean' | 'sum';
      interval: 'PT1M' | 'PT5M' | 'PT15M' | 'PT30M' | 'PT1H';
      maxMissingPoints: number;
      dimensions: Array<{ dimension: string; values: string[] }>;
      operator: ThresholdOperator;
      threshold: number;
    };

export interface GateTarget {
  name: string;
  region?: string;
  parameters: Record<string, string>;
  resources: Record<string, string>;
}

/** A health gate pipelines ask (`POST /api/gates/{name}`); defaults filled in. */
export interface GatePolicy {
  name: string;
  description?: string;
  windowMinutes: number;
  wait: { maxMinutes: number; intervalSeconds: number };
  targets: GateTarget[];
  conditions: GateCondition[];
  /** Channels told when a waiting evaluation ends failed; empty: none. */
  notify: string[];
}

export interface Policy {
  version: 1;
  secrets: ManagedSecret[];
  deadLetters: DeadLetterEntity[];
  playbooks: Playbook[];
  schedules: Schedules;
  notifications: Notifications;
  checks: ChecksPolicy;
  monitoring: { workspaces: MonitoringWorkspace[] };
  gates: GatePolicy[];
  /** Where the policy was read from (a file path or a label); for messages only. */
  source: string;
}

/** The result of validating a policy text without throwing. */
export type PolicyValidation = { ok: true; policy: Policy } | { ok: false; problems: string[] };

/** The JSON Schema of the policy file (for tools that want to show or reuse it). */
export const POLICY_SCHEMA: object = policySchema;

const DEFAULT_POLICY_FILE = 'policy/stampkeeper.policy.yaml';
const VAULT_DNS_SUFFIX = 'vault.azure.net';

/**
 * The normalised URL of a vault given by name (`contoso-kv`) or by URL
 * (`https://Contoso-KV.vault.azure.net/`): `https://contoso-kv.vault.azure.net`.
 */
export function vaultUrlOf(vault: string): string {
  const trimmed = vault.trim();
  if (/^https?:\/\//i.test(trimmed)) return new URL(trimmed).origin;
  return `https://${trimmed.toLowerCase()}.${VAULT_DNS_SUFFIX}`;
}

/**
 * The managed secret matching a vault (name or URL; host compared case-insensitively) and a secret
 * name (case-insensitive, as Key Vault names are), or `undefined` when the policy does not name it.
 */
export function findManagedSecret(
  policy: Policy,
  vaultUrlOrName: string,
  secretName: string,
): ManagedSecret | undefined {
  let url: string;
  try {
    url = vaultUrlOf(vaultUrlOrName);
  } catch {
    return undefined;
  }
  const name = secretName.toLowerCase();
  return policy.secrets.find((s) => s.vaultUrl === url && s.name.toLowerCase() === name);
}

/**
 * The channels a secret notifies: its `notify` list, or `notifications.defaults` when it has none.
 * When `severity` is given, channels whose `minSeverity` is higher are left out.
 */
export function channelsFor(
  policy: Policy,
  secret: Pick<ManagedSecret, 'notify'> | undefined,
  severity?: Severity,
): NotificationChannel[] {
  const names = secret?.notify ?? policy.notifications.defaults;
  const channels = names
    .map((n) => policy.notifications.channels.find((c) => c.name === n))
    .filter((c): c is NotificationChannel => c !== undefined);
  return severity === undefined ? channels : channels.filter((c) => severityAtLeast(severity, c.minSeverity));
}

/** Validates a policy text (YAML or JSON) and returns the policy or every problem found. */
export function validatePolicy(text: string, sourceName = 'policy'): PolicyValidation {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    return {
      ok: false,
      problems: doc.errors.map((e) => {
        const line = e.linePos?.[0];
        const where = line ? `line ${line.line}, column ${line.col}` : 'unknown position';
        return `${where}: YAML syntax error: ${firstLine(e.message)}`;
      }),
    };
  }
  const data: unknown = doc.toJS();
  const lineOf = (path: PathSegment[]): number | undefined => {
    for (let n = path.length; n >= 0; n--) {
      const node = doc.getIn(path.slice(0, n), true);
      if (isNode(node) && node.range) return lineCounter.linePos(node.range[0]).line;
    }
    return undefined;
  };
  const problems: Problem[] = [];
  if (data === null || data === undefined || typeof data !== 'object' || Array.isArray(data)) {
    problems.push({ path: [], message: 'must be a mapping with at least `version: 1`' });
  } else {
    if (!validateSchema(data)) problems.push(...schemaProblems(validateSchema.errors ?? []));
    problems.push(...semanticProblems(data as Record<string, unknown>));
  }
  if (problems.length > 0) {
    return {
      ok: false,
      problems: dedupe(
        problems
          .map((p) => ({ ...p, line: lineOf(p.path) }))
          // Stable sort: problems read top to bottom, like the file.
          .sort((a, b) => (a.line ?? Number.MAX_SAFE_INTEGER) - (b.line ?? Number.MAX_SAFE_INTEGER))
          .map((p) => `${formatPath(p.path)}: ${p.message}${p.line ? ` (line ${p.line})` : ''}`),
      ),
    };
  }
  const raw = data as Omit<Policy, 'source'> & { $schema?: string };
  const { $schema: _ignored, ...rest } = raw;
  const extra = data as { checks?: unknown; monitoring?: unknown; gates?: unknown };
  return {
    ok: true,
    policy: {
      ...rest,
      checks: normalizeChecks(asRecord(extra.checks)),
      monitoring: {
        workspaces: (asRecord(extra.monitoring)?.workspaces as MonitoringWorkspace[] | undefined) ?? [],
      },
      gates: normalizeGates(Array.isArray(extra.gates) ? extra.gates : []),
      secrets: rest.secrets.map((s) => ({
        ...s,
        vaultUrl: vaultUrlOf(s.vault),
        rotation: normalizeRotation(s.rotation as unknown as Record<string, unknown> | undefined),
      })),
      playbooks: (rest.playbooks as unknown as Array<Record<string, unknown>>).map(normalizePlaybook),
      deadLetters: (rest.deadLetters as unknown as Array<Record<string, unknown>>).map(normalizeDeadLetter),
      schedules: {
        ...rest.schedules,
        deadLetterReport: rest.schedules.deadLetterReport ?? DEFAULT_DEAD_LETTER_REPORT,
      },
      source: sourceName,
    },
  };
}

/** A validated rotation section with every default filled in. */
function normalizeRotation(raw: Record<string, unknown> | undefined): RotationPolicy {
  if (!raw || raw.provider === 'manual' || raw.provider === undefined) return { provider: 'manual' };
  const consumers = (Array.isArray(raw.consumers) ? raw.consumers : []).map((c, i): ConsumerPolicy => {
    const consumer = c as Record<string, unknown>;
    switch (consumer.type) {
      case 'webhook':
        return {
          type: 'webhook',
          name: (consumer.name as string | undefined) ?? `webhook-${i + 1}`,
          urlSetting: consumer.urlSetting as string,
          completion: (consumer.completion as 'callback' | 'poll' | undefined) ?? 'poll',
          timeoutMinutes: (consumer.timeoutMinutes as number | undefined) ?? 30,
        };
      case 'waitForReload':
        return consumer as unknown as ConsumerPolicy;
      default:
        return { timeoutMinutes: 10, ...consumer } as unknown as ConsumerPolicy;
    }
  });
  return {
    provider: raw.provider as KeyProvider,
    resourceId: raw.resourceId as string,
    keyPair: (raw.keyPair as 'readWrite' | 'readOnly' | undefined) ?? 'readWrite',
    publish: (raw.publish as 'key' | 'connectionString' | undefined) ?? 'key',
    validityDays: (raw.validityDays as number | undefined) ?? 90,
    mode: (raw.mode as 'alternate' | 'revoke' | undefined) ?? 'alternate',
    approval: (raw.approval as boolean | undefined) ?? false,
    ...(raw.window ? { window: raw.window as { startHour: number; endHour: number } } : {}),
    consumers,
  };
}

const DEFAULT_DEAD_LETTER_REPORT = '0 */15 * * * *';

/** A validated dead-letter entity with every default filled in. */
function normalizeDeadLetter(raw: Record<string, unknown>): DeadLetterEntity {
  const namespaceId = raw.namespaceId as string;
  const source: DeadLetterEntity['source'] =
    typeof raw.queue === 'string'
      ? { queue: raw.queue }
      : { topic: raw.topic as string, subscription: raw.subscription as string };
  const alerts = (raw.alerts ?? {}) as Partial<DeadLetterEntity['alerts']>;
  const replay = (raw.replay ?? {}) as {
    maxReplays?: number;
    targets?: Array<{ queue?: string; topic?: string }>;
    auto?: Array<Partial<AutoReplayRule>>;
  };
  return {
    name: raw.name as string,
    namespaceId,
    namespace: namespaceId.split('/').pop()!,
    ...(typeof raw.region === 'string' ? { region: raw.region } : {}),
    source,
    path: 'queue' in source ? source.queue : `${source.topic}/Subscriptions/${source.subscription}`,
    topicSubscriptions: (raw.topicSubscriptions as string[] | undefined) ?? [],
    connection: (raw.connection as string | undefined) ?? DEFAULT_SERVICE_BUS_CONNECTION,
    owner: raw.owner as string,
    ...(Array.isArray(raw.notify) ? { notify: raw.notify as string[] } : {}),
    alerts: { minIntervalMinutes: alerts.minIntervalMinutes ?? 15, severity: alerts.severity ?? 'warning' },
    replay: {
      maxReplays: replay.maxReplays ?? 3,
      targets: (replay.targets ?? []).map((t) =>
        t.queue !== undefined
          ? { type: 'queue' as const, name: t.queue }
          : { type: 'topic' as const, name: t.topic! },
      ),
      auto: (replay.auto ?? []).map((rule) => ({
        reason: rule.reason!,
        ...(rule.description === undefined ? {} : { description: rule.description }),
        delayMinutes: rule.delayMinutes!,
        maxAttempts: rule.maxAttempts ?? 1,
      })),
    },
  };
}

/** The dead-letter entity of the policy with this name (case-insensitive), or undefined. */
export function findDeadLetterEntity(policy: Policy, name: string): DeadLetterEntity | undefined {
  const wanted = name.toLowerCase();
  return policy.deadLetters.find((e) => e.name === wanted);
}

/** The channels a dead-letter entity alerts: its `notify` list, or `notifications.defaults`. */
export function deadLetterChannels(policy: Policy, entity: DeadLetterEntity): NotificationChannel[] {
  return channelsFor(policy, entity.notify === undefined ? undefined : { notify: entity.notify });
}

/** The checks section with every default filled in (a check absent from the policy stays absent). */
function normalizeChecks(raw: Record<string, unknown> | undefined): ChecksPolicy {
  if (!raw) return {};
  const out: ChecksPolicy = {};
  if (typeof raw.runbookBaseUrl === 'string') out.runbookBaseUrl = raw.runbookBaseUrl;
  const base = (name: CheckName, check: Record<string, unknown>): CheckBase => ({
    schedule: (check.schedule as string | undefined) ?? DEFAULT_CHECK_SCHEDULES[name],
    ...(Array.isArray(check.notify) ? { notify: check.notify as string[] } : {}),
  });
  const backup = asRecord(raw.backupReadiness);
  if (backup) {
    out.backupReadiness = {
      ...base('backupReadiness', backup),
      cosmosDbAccounts: ((backup.cosmosDbAccounts as Array<Record<string, unknown>>) ?? []).map((a) => {
        const drill = asRecord(a.drill) ?? {};
        return {
          resourceId: a.resourceId as string,
          maxIntervalMinutes: (a.maxIntervalMinutes as number | undefined) ?? 240,
          minRetentionHours: (a.minRetentionHours as number | undefined) ?? 8,
          ...(Array.isArray(a.redundancy) ? { redundancy: a.redundancy as string[] } : {}),
          drill: {
            enabled: (drill.enabled as boolean | undefined) ?? true,
            hoursAgo: (drill.hoursAgo as number | undefined) ?? 1,
            ...(typeof drill.targetAccountName === 'string'
              ? { targetAccountName: drill.targetAccountName }
              : {}),
            ...(typeof drill.location === 'string' ? { location: drill.location } : {}),
          },
        };
      }),
    };
  }
  const quota = asRecord(raw.quotaHeadroom);
  if (quota) {
    out.quotaHeadroom = {
      ...base('quotaHeadroom', quota),
      warnAtPercent: (quota.warnAtPercent as number | undefined) ?? 80,
      criticalAtPercent: (quota.criticalAtPercent as number | undefined) ?? 95,
      requestTargetPercent: (quota.requestTargetPercent as number | undefined) ?? 50,
      quotas: (quota.quotas as QuotaHeadroomCheck['quotas']) ?? [],
    };
  }
  const versions = asRecord(raw.platformVersions);
  if (versions) {
    const runtime = asRecord(versions.runtime) ?? {};
    out.platformVersions = {
      ...base('platformVersions', versions),
      aksClusters: (versions.aksClusters as string[] | undefined) ?? [],
      runtime: {
        enabled: (runtime.enabled as boolean | undefined) ?? true,
        warnDaysBeforeEnd: (runtime.warnDaysBeforeEnd as number | undefined) ?? 180,
        maxDataAgeDays: (runtime.maxDataAgeDays as number | undefined) ?? 180,
      },
    };
  }
  const hygiene = asRecord(raw.credentialHygiene);
  if (hygiene) {
    out.credentialHygiene = {
      ...base('credentialHygiene', hygiene),
      vaults: ((hygiene.vaults as string[] | undefined) ?? []).map(vaultUrlOf),
      maxValidityDays: (hygiene.maxValidityDays as number | undefined) ?? 365,
      cosmosDbAccounts: (hygiene.cosmosDbAccounts as CredentialHygieneCheck['cosmosDbAccounts']) ?? [],
    };
  }
  return out;
}

/** Gates with every default filled in. */
function normalizeGates(raw: unknown[]): GatePolicy[] {
  return raw.map((g) => {
    const gate = g as Record<string, unknown>;
    const wait = asRecord(gate.wait) ?? {};
    return {
      name: gate.name as string,
      ...(typeof gate.description === 'string' ? { description: gate.description } : {}),
      windowMinutes: (gate.windowMinutes as number | undefined) ?? 15,
      wait: {
        maxMinutes: (wait.maxMinutes as number | undefined) ?? 60,
        intervalSeconds: (wait.intervalSeconds as number | undefined) ?? 60,
      },
      targets: ((gate.targets as Array<Record<string, unknown>>) ?? []).map((t) => ({
        name: t.name as string,
        ...(typeof t.region === 'string' ? { region: t.region } : {}),
        parameters: (asRecord(t.parameters) as Record<string, string> | undefined) ?? {},
        resources: (asRecord(t.resources) as Record<string, string> | undefined) ?? {},
      })),
      conditions: ((gate.conditions as Array<Record<string, unknown>>) ?? []).map((c): GateCondition => {
        if (c.type === 'logs') {
          return {
            name: c.name as string,
            type: 'logs',
            workspace: c.workspace as string,
            query: c.query as string,
            column: c.column as string,
            operator: c.operator as ThresholdOperator,
            threshold: c.threshold as number,
            minRows: (c.minRows as number | undefined) ?? 1,
          };
        }
        return {
          name: c.name as string,
          type: 'metric',
          resource: c.resource as string,
          namespace: c.namespace as string,
          metric: c.metric as string,
          aggregation: c.aggregation as 'Average',
          reduce: (c.reduce as 'maximum' | undefined) ?? 'maximum',
          interval: (c.interval as 'PT1M' | undefined) ?? 'PT1M',
          maxMissingPoints: (c.maxMissingPoints as number | undefined) ?? 0,
          dimensions: (c.dimensions as Array<{ dimension: string; values: string[] }> | undefined) ?? [],
          operator: c.operator as ThresholdOperator,
          threshold: c.threshold as number,
        };
      }),
      notify: (gate.notify as string[] | undefined) ?? [],
    };
  });
}

/** The gate of that name (exact), or undefined. */
export function findGate(policy: Policy, name: string): GatePolicy | undefined {
  return policy.gates.find((g) => g.name === name);
}

/**
 * Why a consumer's roll would not prove that it moved to the new key, or undefined when it would.
 * Revoke mode regenerates the old key once every roll reports done, so a "done" must mean the
 * consumer now runs on the new version. A health URL (any type) is a proof: it answers 200 only
 * once the consumer holds the new version. AKS is: the run command's `kubectl rollout status` waits
 * for the new pods to be ready. A webhook is: its pipeline reports success (callback or polling)
 * only after its own deployment. An App Service restart is not: the roller reports done once the
 * restart call returns and a fixed settle time passed, whatever the site then serves (a restart can
 * take minutes). A Container App is not: a revision's running state does not say its replicas
 * loaded the new secret. A wait for reload is not: it only waits.
 */
export function unprovenRollReason(consumer: {
  type?: unknown;
  healthUrlSetting?: unknown;
}): string | undefined {
  if (typeof consumer.healthUrlSetting === 'string' && consumer.healthUrlSetting) return undefined;
  switch (consumer.type) {
    case 'appService':
      return 'an App Service restart proves nothing once it returns: give it a healthUrlSetting';
    case 'containerApp':
      return "a Container App revision's state does not prove its replicas hold the new key: give it a healthUrlSetting";
    case 'waitForReload':
      return 'a wait for reload proves nothing: give it a healthUrlSetting';
    default:
      return undefined;
  }
}

/**
 * The consumers of a rotation whose move to the new key nothing would prove (name: reason): revoke
 * mode refuses them, since it would regenerate the key they may still use.
 */
export function revokeProblems(rotation: Pick<KeyRotationPolicy, 'consumers'>): string[] {
  return rotation.consumers.flatMap((c) => {
    const why = unprovenRollReason(c);
    return why ? [`consumer ${consumerName(c)} (${c.type}): ${why}`] : [];
  });
}

/** A consumer's label in plans, audit records and notifications. */
export function consumerName(consumer: ConsumerPolicy): string {
  switch (consumer.type) {
    case 'aksDeployment':
      return `${consumer.clusterId.split('/').pop()}/${consumer.namespace}/${consumer.deployment}`;
    case 'containerApp':
    case 'appService':
      return consumer.resourceId.split('/').pop()!;
    default:
      return consumer.name;
  }
}

/**
 * Parses and validates a policy text. Throws `ConfigurationError` whose message lists every
 * problem as `<path in file>: <message> (line N)`; YAML syntax errors carry line and column.
 */
export function parsePolicy(text: string, sourceName = 'policy'): Policy {
  const result = validatePolicy(text, sourceName);
  if (!result.ok) throw policyError(sourceName, result.problems);
  return result.policy;
}

/** Reads and validates the policy file at `path`. Throws `ConfigurationError` (see `parsePolicy`). */
export async function loadPolicy(path: string): Promise<Policy> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw unreadable(path, error);
  }
  return parsePolicy(text, path);
}

/** Synchronous `loadPolicy`, for module-load time (trigger registrations are synchronous). */
export function loadPolicySync(path: string): Policy {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw unreadable(path, error);
  }
  return parsePolicy(text, path);
}

function unreadable(path: string, error: unknown): ConfigurationError {
  const code = (error as NodeJS.ErrnoException).code;
  const reason = code === 'ENOENT' ? 'file not found' : `cannot read it (${code ?? 'unknown error'})`;
  const problem = `(file): ${reason} (the app reads STAMPKEEPER_POLICY_PATH, default ${DEFAULT_POLICY_FILE} under the app root)`;
  return new ConfigurationError(`Invalid policy ${path}:\n  - ${problem}`, [problem], {
    cause: error,
    metadata: { policyPath: path },
  });
}

function policyError(sourceName: string, problems: string[]): ConfigurationError {
  return new ConfigurationError(
    `Invalid policy ${sourceName} (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n${problems
      .map((p) => `  - ${p}`)
      .join('\n')}`,
    problems,
    { metadata: { policyPath: sourceName } },
  );
}

type PathSegment = string | number;
interface Problem {
  path: PathSegment[];
  message: string;
}

function schemaProblems(errors: ErrorObject[]): Problem[] {
  const out: Problem[] = [];
  for (const e of errors) {
    // `if` only says which branch failed; the branch's own errors follow.
    if (e.keyword === 'if') continue;
    const path = pointerToPath(e.instancePath);
    const parent = (e.parentSchema ?? {}) as { errorMessage?: string; patternErrorMessage?: string };
    switch (e.keyword) {
      case 'required':
        out.push({ path: [...path, e.params.missingProperty as string], message: 'is required' });
        break;
      case 'additionalProperties': {
        const allowed = Object.keys((parent as { properties?: object }).properties ?? {});
        out.push({
          path: [...path, e.params.additionalProperty as string],
          message: `is not allowed here${allowed.length ? ` (allowed: ${allowed.join(', ')})` : ''}`,
        });
        break;
      }
      case 'enum':
        out.push({
          path,
          message: `must be one of: ${(e.params.allowedValues as unknown[]).map(String).join(', ')}`,
        });
        break;
      case 'pattern':
        out.push({ path, message: parent.patternErrorMessage ?? e.message ?? 'is malformed' });
        break;
      case 'type':
        out.push({ path, message: `must be ${article(String(e.params.type))}` });
        break;
      case 'uniqueItems':
        out.push({
          path: [...path, e.params.i as number],
          message: `duplicates item ${e.params.j as number}`,
        });
        break;
      default:
        out.push({ path, message: parent.errorMessage ?? e.message ?? 'is invalid' });
    }
  }
  return out;
}

/** Checks the schema cannot express. Defensive: the data may also have failed the schema. */
function semanticProblems(data: Record<string, unknown>): Problem[] {
  const out: Problem[] = [];
  const notifications = asRecord(data.notifications);
  const channels = Array.isArray(notifications?.channels) ? notifications.channels : [];
  const channelNames = new Map<string, number>();
  channels.forEach((c, i) => {
    const name = asRecord(c)?.name;
    if (typeof name !== 'string') return;
    const first = channelNames.get(name);
    if (first === undefined) channelNames.set(name, i);
    else
      out.push({
        path: ['notifications', 'channels', i, 'name'],
        message: `duplicate channel name "${name}" (first defined at notifications.channels[${first}])`,
      });
  });
  const known = [...channelNames.keys()];
  const checkRefs = (list: unknown, path: PathSegment[]) => {
    if (!Array.isArray(list)) return;
    list.forEach((name, i) => {
      if (typeof name === 'string' && !channelNames.has(name)) {
        out.push({
          path: [...path, i],
          message: `unknown channel "${name}" (defined: ${known.length ? known.join(', ') : 'none'})`,
        });
      }
    });
  };
  checkRefs(notifications?.defaults, ['notifications', 'defaults']);
  out.push(...playbookProblems(data.playbooks, new Set(channelNames.keys())));

  const secrets = Array.isArray(data.secrets) ? data.secrets : [];
  const seen = new Map<string, number>();
  secrets.forEach((s, i) => {
    const secret = asRecord(s);
    if (!secret) return;
    checkRefs(secret.notify, ['secrets', i, 'notify']);
    if (typeof secret.vault !== 'string' || typeof secret.name !== 'string') return;
    let url: string;
    try {
      url = vaultUrlOf(secret.vault);
    } catch {
      return; // the schema reports the malformed vault
    }
    const key = `${url}/secrets/${secret.name.toLowerCase()}`;
    const first = seen.get(key);
    if (first === undefined) seen.set(key, i);
    else
      out.push({
        path: ['secrets', i],
        message: `duplicate of secrets[${first}] (vault ${url}, secret ${secret.name})`,
      });
  });

  // Two secrets rotating the same key pair would regenerate each other's keys.
  const rotated = new Map<string, number>();
  secrets.forEach((s, i) => {
    const rotation = asRecord(asRecord(s)?.rotation);
    if (!rotation || typeof rotation.resourceId !== 'string' || rotation.provider === 'manual') return;
    const pair = rotation.provider === 'cosmosDbKeys' ? String(rotation.keyPair ?? 'readWrite') : 'keys';
    const target = `${String(rotation.provider)}|${rotation.resourceId.toLowerCase()}|${pair}`;
    const first = rotated.get(target);
    if (first === undefined) rotated.set(target, i);
    else
      out.push({
        path: ['secrets', i, 'rotation', 'resourceId'],
        message: `rotates the same keys as secrets[${first}]: one secret per key pair (two would regenerate each other's keys)`,
      });
    const window = asRecord(rotation.window);
    if (
      window &&
      typeof window.startHour === 'number' &&
      typeof window.endHour === 'number' &&
      window.startHour === window.endHour % 24
    ) {
      out.push({
        path: ['secrets', i, 'rotation', 'window'],
        message:
          'startHour and endHour are the same hour: an empty window (use 0 and 24 for any hour, or leave the window out)',
      });
    }
    const consumers = Array.isArray(rotation.consumers) ? rotation.consumers : [];
    const names = new Map<string, number>();
    consumers.forEach((c, j) => {
      const consumer = asRecord(c);
      if (!consumer) return;
      // Revoke regenerates the old key once the rolls report done: each must prove the move.
      const unproven = rotation.mode === 'revoke' ? unprovenRollReason(consumer) : undefined;
      if (unproven) {
        out.push({
          path: ['secrets', i, 'rotation', 'consumers', j],
          message: `mode revoke needs proof that this consumer moved to the new key: ${unproven}`,
        });
      }
      const name =
        consumer.type === 'aksDeployment'
          ? `${String(consumer.clusterId).toLowerCase()}/${String(consumer.namespace)}/${String(consumer.deployment)}`
          : String(consumer.resourceId ?? consumer.name ?? '').toLowerCase();
      if (!name) return;
      const seenAt = names.get(name);
      if (seenAt === undefined) names.set(name, j);
      else
        out.push({
          path: ['secrets', i, 'rotation', 'consumers', j],
          message: `duplicate of consumers[${seenAt}]`,
        });
    });
  });

  out.push(...deadLetterProblems(data, checkRefs));

  const schedules = asRecord(data.schedules);
  const cron = (expression: unknown, path: PathSegment[]) => {
    if (typeof expression !== 'string') return;
    const problems = ncrontabProblems(expression);
    // Wrong field counts are already reported by the schema pattern.
    if (problems.length && !problems[0]!.startsWith('must have 6 fields')) {
      out.push({ path, message: `invalid NCRONTAB: ${problems.join('; ')}` });
    }
  };
  for (const [name, expression] of Object.entries(schedules ?? {})) cron(expression, ['schedules', name]);
  out.push(...checksProblems(data, checkRefs, cron));
  out.push(...gateProblems(data, checkRefs));
  return out;
}

/** What the schema cannot say about `checks`: schedules, channel references, thresholds in order. */
function checksProblems(
  data: Record<string, unknown>,
  checkRefs: (list: unknown, path: PathSegment[]) => void,
  cron: (expression: unknown, path: PathSegment[]) => void,
): Problem[] {
  const out: Problem[] = [];
  const checks = asRecord(data.checks);
  for (const name of CHECK_NAMES) {
    const check = asRecord(checks?.[name]);
    if (!check) continue;
    cron(check.schedule, ['checks', name, 'schedule']);
    checkRefs(check.notify, ['checks', name, 'notify']);
  }
  const quota = asRecord(checks?.quotaHeadroom);
  if (
    quota &&
    typeof quota.warnAtPercent === 'number' &&
    typeof quota.criticalAtPercent === 'number' &&
    quota.criticalAtPercent < quota.warnAtPercent
  ) {
    out.push({
      path: ['checks', 'quotaHeadroom', 'criticalAtPercent'],
      message: 'must be at least warnAtPercent',
    });
  }
  if (
    quota &&
    typeof quota.criticalAtPercent === 'number' &&
    quota.warnAtPercent === undefined &&
    quota.criticalAtPercent < 80
  ) {
    out.push({
      path: ['checks', 'quotaHeadroom', 'criticalAtPercent'],
      message: 'must be at least warnAtPercent (80 when not given)',
    });
  }
  const backup = asRecord(checks?.backupReadiness);
  const seen = new Map<string, number>();
  (Array.isArray(backup?.cosmosDbAccounts) ? backup.cosmosDbAccounts : []).forEach((a, i) => {
    const id = asRecord(a)?.resourceId;
    if (typeof id !== 'string') return;
    const first = seen.get(id.toLowerCase());
    if (first === undefined) seen.set(id.toLowerCase(), i);
    else
      out.push({
        path: ['checks', 'backupReadiness', 'cosmosDbAccounts', i],
        message: `duplicate of cosmosDbAccounts[${first}]`,
      });
  });
  return out;
}

/**
 * What the schema cannot say about `gates`: unique names, workspaces that exist, metric resources
 * and regions every target has, channels that exist.
 */
function gateProblems(
  data: Record<string, unknown>,
  checkRefs: (list: unknown, path: PathSegment[]) => void,
): Problem[] {
  const out: Problem[] = [];
  const workspaces = asRecord(data.monitoring)?.workspaces;
  const workspaceNames = new Map<string, number>();
  (Array.isArray(workspaces) ? workspaces : []).forEach((w, i) => {
    const name = asRecord(w)?.name;
    if (typeof name !== 'string') return;
    if (workspaceNames.has(name))
      out.push({
        path: ['monitoring', 'workspaces', i, 'name'],
        message: `duplicate workspace name "${name}"`,
      });
    else workspaceNames.set(name, i);
  });
  const gates = Array.isArray(data.gates) ? data.gates : [];
  const names = new Map<string, number>();
  gates.forEach((g, i) => {
    const gate = asRecord(g);
    if (!gate) return;
    if (typeof gate.name === 'string') {
      const first = names.get(gate.name);
      if (first === undefined) names.set(gate.name, i);
      else
        out.push({
          path: ['gates', i, 'name'],
          message: `duplicate gate name "${gate.name}" (first at gates[${first}])`,
        });
    }
    checkRefs(gate.notify, ['gates', i, 'notify']);
    const targets = (Array.isArray(gate.targets) ? gate.targets : []).map(asRecord);
    const targetNames = new Set<string>();
    targets.forEach((t, j) => {
      if (typeof t?.name !== 'string') return;
      if (targetNames.has(t.name))
        out.push({ path: ['gates', i, 'targets', j, 'name'], message: `duplicate target "${t.name}"` });
      targetNames.add(t.name);
    });
    const conditionNames = new Set<string>();
    (Array.isArray(gate.conditions) ? gate.conditions : []).forEach((c, j) => {
      const condition = asRecord(c);
      if (!condition) return;
      const path: PathSegment[] = ['gates', i, 'conditions', j];
      if (typeof condition.name === 'string') {
        if (conditionNames.has(condition.name))
          out.push({ path: [...path, 'name'], message: `duplicate condition "${condition.name}"` });
        conditionNames.add(condition.name);
      }
      if (
        condition.type === 'logs' &&
        typeof condition.workspace === 'string' &&
        !workspaceNames.has(condition.workspace)
      ) {
        out.push({
          path: [...path, 'workspace'],
          message: `unknown workspace "${condition.workspace}" (monitoring.workspaces defines: ${[...workspaceNames.keys()].join(', ') || 'none'})`,
        });
      }
      if (condition.type === 'metric' && typeof condition.resource === 'string') {
        targets.forEach((t, k) => {
          if (!t) return;
          if (!asRecord(t.resources)?.[condition.resource as string])
            out.push({
              path: ['gates', i, 'targets', k, 'resources'],
              message: `has no resource "${condition.resource}" (conditions[${j}] reads it)`,
            });
          if (typeof t.region !== 'string')
            out.push({
              path: ['gates', i, 'targets', k, 'region'],
              message: `is required: conditions[${j}] reads a metric (its metrics endpoint is regional)`,
            });
        });
      }
    });
  });
  return out;
}

/** Dead-letter entities: one source each, unique names and paths, one namespace per connection, valid patterns. */
function deadLetterProblems(
  data: Record<string, unknown>,
  checkRefs: (list: unknown, path: PathSegment[]) => void,
): Problem[] {
  const out: Problem[] = [];
  const entities = Array.isArray(data.deadLetters) ? data.deadLetters : [];
  const names = new Map<string, number>();
  const paths = new Map<string, number>();
  const connections = new Map<string, { namespace: string; index: number }>();
  entities.forEach((e, i) => {
    const entity = asRecord(e);
    if (!entity) return;
    const at = (...rest: PathSegment[]): PathSegment[] => ['deadLetters', i, ...rest];
    checkRefs(entity.notify, at('notify'));
    const hasQueue = entity.queue !== undefined;
    const hasTopic = entity.topic !== undefined || entity.subscription !== undefined;
    if (hasQueue === hasTopic) {
      out.push({ path: at(), message: 'give either queue, or topic and subscription' });
    } else if (hasTopic && (entity.topic === undefined || entity.subscription === undefined)) {
      out.push({ path: at(), message: 'a topic entity needs both topic and subscription' });
    }
    if (hasQueue && entity.topicSubscriptions !== undefined) {
      out.push({ path: at('topicSubscriptions'), message: 'only for a topic subscription' });
    }
    if (typeof entity.name === 'string') {
      const first = names.get(entity.name);
      if (first === undefined) names.set(entity.name, i);
      else out.push({ path: at('name'), message: `duplicate of deadLetters[${first}].name` });
    }
    const namespaceId = typeof entity.namespaceId === 'string' ? entity.namespaceId.toLowerCase() : undefined;
    const path =
      typeof entity.queue === 'string'
        ? entity.queue
        : typeof entity.topic === 'string' && typeof entity.subscription === 'string'
          ? `${entity.topic}/subscriptions/${entity.subscription}`
          : undefined;
    if (namespaceId && path) {
      const key = `${namespaceId}|${path.toLowerCase()}`;
      const first = paths.get(key);
      if (first === undefined) paths.set(key, i);
      else out.push({ path: at(), message: `the same entity as deadLetters[${first}]` });
    }
    const connection =
      typeof entity.connection === 'string' ? entity.connection : DEFAULT_SERVICE_BUS_CONNECTION;
    if (namespaceId) {
      const seen = connections.get(connection);
      if (!seen) connections.set(connection, { namespace: namespaceId, index: i });
      else if (seen.namespace !== namespaceId)
        out.push({
          path: at('connection'),
          message: `connection ${connection} is the namespace of deadLetters[${seen.index}]: give entities of another namespace their own connection`,
        });
    }
    const replay = asRecord(entity.replay);
    const auto = Array.isArray(replay?.auto) ? replay.auto : [];
    auto.forEach((r, j) => {
      const rule = asRecord(r);
      for (const field of ['reason', 'description'] as const) {
        const pattern = rule?.[field];
        if (typeof pattern !== 'string') continue;
        try {
          new RegExp(pattern, 'i');
        } catch (error) {
          out.push({
            path: at('replay', 'auto', j, field),
            message: `is not a valid regular expression (${(error as Error).message})`,
          });
        }
      }
    });
    const targets = Array.isArray(replay?.targets) ? replay.targets : [];
    const seenTargets = new Set<string>();
    targets.forEach((t, j) => {
      const target = asRecord(t);
      const name = target?.queue ?? target?.topic;
      if (typeof name !== 'string') return;
      if (name === entity.queue || name === entity.topic)
        out.push({
          path: at('replay', 'targets', j),
          message: 'is the original entity (always a replay target): list other entities only',
        });
      if (seenTargets.has(name.toLowerCase()))
        out.push({ path: at('replay', 'targets', j), message: `names ${name} twice` });
      seenTargets.add(name.toLowerCase());
    });
  });
  return out;
}

function asRecord(value: unknown): Record<string, unknown> | undefined {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

function pointerToPath(pointer: string): PathSegment[] {
  if (!pointer) return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
}

/** `['secrets', 1, 'vault']` -> `secrets[1].vault`; the root is `(root)`. */
export function formatPath(path: readonly PathSegment[]): string {
  if (path.length === 0) return '(root)';
  return path
    .map((s, i) =>
      typeof s === 'number'
        ? `[${s}]`
        : /^[A-Za-z_$][\w$]*$/.test(s)
          ? i
            ? `.${s}`
            : s
          : `[${JSON.stringify(s)}]`,
    )
    .join('');
}

function article(type: string): string {
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`;
}

function firstLine(message: string): string {
  return message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
}

function dedupe(items: string[]): string[] {
  return [...new Set(items)];
}

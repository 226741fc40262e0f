/**
 * Scenario files: the estate the sandbox starts with (vaults and secrets with expiries and tags,
 * the Event Grid subscriptions that deliver the world's events to the app, delivery behaviour).
 * YAML or JSON. Validation collects every problem with its path in the file, so one run of
 * `loadScenario` tells the author everything that is wrong.
 */

import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { ValidationError } from '../../lib/core/errors';
import { type AlertingScenario, type ResolvedAlerting, resolveAlertingScenario } from './alerting';
import {
  type ResolvedArm,
  type ResolvedConsumer,
  type ResolvedValueFrom,
  resolveArmSection,
} from './arm/scenario';
import { seedFromContent } from './ids';
import { KEY_VAULT_LIMITS, type KeyVaultThrottling } from './keyvault/throttle';
import {
  type MonitorScenario,
  type ResolvedMonitorScenario,
  resolveMonitorScenario,
} from './monitor/scenario';
import { checkKeys, isObject, optNumber, optString, type Problems } from './scenarioFields';
import { type ResolvedServiceBusScenario, resolveServiceBusSection } from './servicebus/scenario';

export const EVENT_GRID_SCHEMAS = ['EventGridSchema', 'CloudEventSchemaV1_0'] as const;
export type EventGridDeliverySchema = (typeof EVENT_GRID_SCHEMAS)[number];

export const KEY_VAULT_SECRET_EVENT_TYPES = [
  'Microsoft.KeyVault.SecretNewVersionCreated',
  'Microsoft.KeyVault.SecretNearExpiry',
  'Microsoft.KeyVault.SecretExpired',
] as const;

/** A secret as a scenario seeds it (one version). Times are absolute (ISO) or relative to the clock start. */
export interface ScenarioSecret {
  name: string;
  /** Omitted: a random value is generated (and never printed). */
  value?: string;
  contentType?: string;
  enabled?: boolean;
  expires?: string;
  expiresInDays?: number;
  notBefore?: string;
  notBeforeInDays?: number;
  tags?: Record<string, string>;
  /**
   * True: the secret half of a Key Vault certificate. Listed with `managed: true`, read with the `kid`
   * of the certificate's key; `contentType` is the certificate's (`application/x-pkcs12`, the default,
   * or `application/x-pem-file`); setting or updating it is refused (403 `SecretManagedByKeyVault`).
   */
  certificate?: boolean;
  /**
   * The seeded value is a key of a resource of the `arm` section (docs/sandbox.md, "Resource
   * Manager"): `{ resource: cosmosDb/<account> | storage/<account> | serviceBus/<ns>/<rule> | <ARM id>,
   * key: <listKeys name>, format?: key | connectionString }`. Exclusive with `value`.
   */
  valueFrom?: { resource: string; key: string; format?: 'key' | 'connectionString' };
}

export interface ScenarioVault {
  name: string;
  /** Defaults to `azure.resourceGroup`. */
  resourceGroup?: string;
  secrets?: ScenarioSecret[];
}

export interface ScenarioEventSubscription {
  name: string;
  /** A vault name, or '*' for every vault of the scenario. */
  vault: string;
  /** Empty or omitted: every Key Vault secret event type. */
  eventTypes?: string[];
  endpoint: { functionName: string };
  schema?: EventGridDeliverySchema;
}

/** A scenario as written in a file (every section optional) or built by a test. */
export interface Scenario {
  /**
   * What the ids the sandbox invents (secret versions, event ids) derive from: the same seed and the
   * same actions give the same ids. Omitted: derived from the scenario's content.
   */
  seed?: number | string;
  clock?: { start?: string };
  azure?: { subscriptionId?: string; tenantId?: string; resourceGroup?: string };
  keyVault?: {
    vaults?: ScenarioVault[];
    /**
     * Key Vault's service limits (docs/sandbox.md, "Key Vault throttling"): on by default with the
     * real ones (4,000 transactions per 10 s per vault, 429 `Throttled` without `Retry-After`);
     * `false` turns them off.
     */
    throttling?: false | { limit?: number; windowSeconds?: number; retryAfter?: boolean };
  };
  eventGrid?: { subscriptions?: ScenarioEventSubscription[] };
  delivery?: {
    duplicateProbability?: number;
    maxAttempts?: number;
    seed?: number;
    /** How long one delivery attempt may take before it counts as failed (Event Grid waits 30 s). */
    timeoutMs?: number;
  };
  /** The Service Bus broker's entities and simulated consumers (docs/servicebus-broker.md, "Scenario"). */
  serviceBus?: unknown;
  /** Azure Monitor: metrics of resources and Log Analytics workspaces (`monitor/scenario.ts`). */
  monitor?: MonitorScenario;
  /** Resource Manager resources (Cosmos DB, Storage, Service Bus namespaces, AKS, Container Apps, App Service): `arm/scenario.ts`. */
  arm?: unknown;
  /** Simulated consumers of keys, rolled and watched for downtime: `arm/scenario.ts`. */
  consumers?: unknown;
  /** Load on Cosmos DB containers and queues, metric alert rules and their action group: `alerting.ts`. */
  alerting?: AlertingScenario;
}

/** A validated scenario with every default filled in. */
export interface ResolvedScenario {
  /** The scenario's `seed` as text, or one derived from its content. */
  seed: string;
  clock: { start: Date | undefined };
  azure: { subscriptionId: string; tenantId: string; resourceGroup: string };
  keyVault: {
    /** The service limits the vaults enforce; `false`: none. */
    throttling: KeyVaultThrottling | false;
    vaults: Array<{
      name: string;
      resourceGroup: string;
      secrets: Array<{
        name: string;
        value: string | undefined;
        contentType: string | undefined;
        enabled: boolean;
        expires: { at: string } | { inDays: number } | undefined;
        notBefore: { at: string } | { inDays: number } | undefined;
        tags: Record<string, string>;
        certificate: boolean;
        /** Where the seeded value comes from (a key of an `arm` resource), when not `value` nor random. */
        valueFrom?: ResolvedValueFrom;
      }>;
    }>;
  };
  eventGrid: {
    subscriptions: Array<{
      name: string;
      vault: string;
      eventTypes: string[];
      endpoint: { functionName: string };
      schema: EventGridDeliverySchema;
    }>;
  };
  delivery: { duplicateProbability: number; maxAttempts: number; seed: number; timeoutMs: number };
  /** Undefined when the scenario has no `serviceBus` section. */
  serviceBus: ResolvedServiceBusScenario | undefined;
  monitor: ResolvedMonitorScenario;
  arm: ResolvedArm;
  consumers: ResolvedConsumer[];
  alerting: ResolvedAlerting;
}

export const DEFAULT_SUBSCRIPTION_ID = '00000000-0000-0000-0000-000000000000';
export const DEFAULT_TENANT_ID = '00000000-0000-0000-0000-000000000001';
export const DEFAULT_RESOURCE_GROUP = 'rg-stampkeeper-sandbox';
/** Event Grid waits 30 s for an endpoint's answer before it counts the attempt as failed. */
export const DEFAULT_DELIVERY_TIMEOUT_MS = 30_000;

const VAULT_NAME = /^[a-zA-Z](?:[a-zA-Z0-9]|-(?!-)){1,22}[a-zA-Z0-9]$/;
const SECRET_NAME = /^[0-9a-zA-Z-]{1,127}$/;
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const MAX_TAGS = 15;
const MAX_SEED_LENGTH = 200;
/** The content types a certificate's secret can have (the certificate policy's `secret_props.contentType`). */
export const CERTIFICATE_CONTENT_TYPES = ['application/x-pkcs12', 'application/x-pem-file'] as const;

function optIsoDate(
  obj: Record<string, unknown>,
  key: string,
  path: string,
  problems: Problems,
): string | undefined {
  let value = obj[key];
  if (value instanceof Date) value = value.toISOString();
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || Number.isNaN(Date.parse(value)) || !/^\d{4}-\d{2}-\d{2}/.test(value)) {
    problems.push(`${path}.${key}: must be an ISO 8601 date-time such as 2026-01-01T00:00:00Z`);
    return undefined;
  }
  return value;
}

function validateTags(value: unknown, path: string, problems: Problems): Record<string, string> {
  if (value === undefined) return {};
  if (!isObject(value)) {
    problems.push(`${path}: must be a map of tag names to string values`);
    return {};
  }
  const tags: Record<string, string> = {};
  const entries = Object.entries(value);
  if (entries.length > MAX_TAGS)
    problems.push(`${path}: at most ${MAX_TAGS} tags (Key Vault's limit), got ${entries.length}`);
  for (const [key, tag] of entries) {
    if (typeof tag !== 'string') problems.push(`${path}.${key}: tag values must be strings`);
    else tags[key] = tag;
  }
  return tags;
}

function relativeOrAbsolute(
  obj: Record<string, unknown>,
  absKey: string,
  relKey: string,
  path: string,
  problems: Problems,
): { at: string } | { inDays: number } | undefined {
  const at = optIsoDate(obj, absKey, path, problems);
  const inDays = optNumber(
    obj,
    relKey,
    path,
    problems,
    () => true,
    'a number of days (may be negative or fractional)',
  );
  if (at !== undefined && inDays !== undefined) {
    problems.push(`${path}: give either ${absKey} or ${relKey}, not both`);
    return undefined;
  }
  if (at !== undefined) return { at };
  if (inDays !== undefined) return { inDays };
  return undefined;
}

/**
 * Validates a scenario (as parsed from a file or built in code) and fills in defaults.
 * Throws a `ValidationError` whose `problems` name every wrong path (`keyVault.vaults[0].secrets[1].tags`).
 */
export function resolveScenario(input: unknown, source = 'scenario'): ResolvedScenario {
  const problems: Problems = [];
  const root = input ?? {};
  if (!isObject(root)) {
    throw new ValidationError(`${source}: a scenario must be a mapping at the top level`, [
      '(root): must be a mapping',
    ]);
  }
  checkKeys(
    root,
    [
      'seed',
      'clock',
      'azure',
      'keyVault',
      'eventGrid',
      'delivery',
      'serviceBus',
      'monitor',
      'arm',
      'consumers',
      'alerting',
    ],
    '',
    problems,
  );
  let seed: string | undefined;
  if (root.seed !== undefined) {
    const raw = root.seed;
    if (typeof raw === 'number' && Number.isSafeInteger(raw)) seed = String(raw);
    else if (typeof raw === 'string' && raw !== '' && raw.length <= MAX_SEED_LENGTH) seed = raw;
    else
      problems.push(
        `seed: must be an integer or a non-empty string of at most ${MAX_SEED_LENGTH} characters`,
      );
  }

  const section = (key: string): Record<string, unknown> => {
    const value = root[key];
    if (value === undefined || value === null) return {};
    if (!isObject(value)) {
      problems.push(`${key}: must be a mapping`);
      return {};
    }
    return value;
  };

  const clock = section('clock');
  checkKeys(clock, ['start'], 'clock', problems);
  const start = optIsoDate(clock, 'start', 'clock', problems);

  const azure = section('azure');
  checkKeys(azure, ['subscriptionId', 'tenantId', 'resourceGroup'], 'azure', problems);
  const subscriptionId = optString(azure, 'subscriptionId', 'azure', problems) ?? DEFAULT_SUBSCRIPTION_ID;
  if (!GUID.test(subscriptionId)) problems.push('azure.subscriptionId: must be a GUID');
  const tenantId = optString(azure, 'tenantId', 'azure', problems) ?? DEFAULT_TENANT_ID;
  if (!GUID.test(tenantId)) problems.push('azure.tenantId: must be a GUID');
  const resourceGroup = optString(azure, 'resourceGroup', 'azure', problems) ?? DEFAULT_RESOURCE_GROUP;

  const keyVault = section('keyVault');
  checkKeys(keyVault, ['vaults', 'throttling'], 'keyVault', problems);
  const throttling = resolveThrottling(keyVault.throttling, problems);
  const vaults: ResolvedScenario['keyVault']['vaults'] = [];
  const vaultsRaw = keyVault.vaults ?? [];
  if (!Array.isArray(vaultsRaw)) problems.push('keyVault.vaults: must be a list');
  else {
    const seenVaults = new Set<string>();
    vaultsRaw.forEach((rawVault, i) => {
      const path = `keyVault.vaults[${i}]`;
      if (!isObject(rawVault)) {
        problems.push(`${path}: must be a mapping`);
        return;
      }
      checkKeys(rawVault, ['name', 'resourceGroup', 'secrets'], path, problems);
      const name = optString(rawVault, 'name', path, problems);
      if (name === undefined) {
        if (rawVault.name === undefined) problems.push(`${path}.name: is required`);
        return;
      }
      if (!VAULT_NAME.test(name)) {
        problems.push(
          `${path}.name: '${name}' is not a valid vault name (3-24 letters, digits and single hyphens, starting with a letter)`,
        );
      }
      if (seenVaults.has(name.toLowerCase())) problems.push(`${path}.name: duplicate vault '${name}'`);
      seenVaults.add(name.toLowerCase());
      const secrets: ResolvedScenario['keyVault']['vaults'][number]['secrets'] = [];
      const secretsRaw = rawVault.secrets ?? [];
      if (!Array.isArray(secretsRaw)) problems.push(`${path}.secrets: must be a list`);
      else {
        const seenSecrets = new Set<string>();
        secretsRaw.forEach((rawSecret, j) => {
          const spath = `${path}.secrets[${j}]`;
          if (!isObject(rawSecret)) {
            problems.push(`${spath}: must be a mapping`);
            return;
          }
          checkKeys(
            rawSecret,
            [
              'name',
              'value',
              'contentType',
              'enabled',
              'expires',
              'expiresInDays',
              'notBefore',
              'notBeforeInDays',
              'tags',
              'certificate',
              'valueFrom',
            ],
            spath,
            problems,
          );
          const secretName = optString(rawSecret, 'name', spath, problems);
          if (secretName === undefined) {
            if (rawSecret.name === undefined) problems.push(`${spath}.name: is required`);
            return;
          }
          if (!SECRET_NAME.test(secretName)) {
            problems.push(
              `${spath}.name: '${secretName}' is not a valid secret name (1-127 letters, digits, hyphens)`,
            );
          }
          if (seenSecrets.has(secretName.toLowerCase()))
            problems.push(`${spath}.name: duplicate secret '${secretName}'`);
          seenSecrets.add(secretName.toLowerCase());
          // Never echo the value in a problem: the file may hold a real one by mistake.
          if (rawSecret.value !== undefined && typeof rawSecret.value !== 'string') {
            problems.push(`${spath}.value: must be a string (omit it to generate a random value)`);
          }
          const enabled = rawSecret.enabled;
          if (enabled !== undefined && typeof enabled !== 'boolean')
            problems.push(`${spath}.enabled: must be true or false`);
          const certificate = rawSecret.certificate;
          if (certificate !== undefined && typeof certificate !== 'boolean')
            problems.push(`${spath}.certificate: must be true or false`);
          let contentType = optString(rawSecret, 'contentType', spath, problems);
          if (certificate === true) {
            if (contentType === undefined) contentType = CERTIFICATE_CONTENT_TYPES[0];
            else if (!(CERTIFICATE_CONTENT_TYPES as readonly string[]).includes(contentType)) {
              problems.push(
                `${spath}.contentType: a certificate's secret has the content type of its certificate: ${CERTIFICATE_CONTENT_TYPES.join(' or ')}`,
              );
            }
          }
          secrets.push({
            name: secretName,
            value: typeof rawSecret.value === 'string' ? rawSecret.value : undefined,
            contentType,
            enabled: enabled !== false,
            expires: relativeOrAbsolute(rawSecret, 'expires', 'expiresInDays', spath, problems),
            notBefore: relativeOrAbsolute(rawSecret, 'notBefore', 'notBeforeInDays', spath, problems),
            tags: validateTags(rawSecret.tags, `${spath}.tags`, problems),
            certificate: certificate === true,
            // Checked against the `arm` section below, once every resource is known.
            ...(rawSecret.valueFrom === undefined
              ? {}
              : { valueFrom: rawSecret.valueFrom as ResolvedValueFrom }),
          });
        });
      }
      vaults.push({
        name,
        resourceGroup: optString(rawVault, 'resourceGroup', path, problems) ?? resourceGroup,
        secrets,
      });
    });
  }

  const eventGrid = section('eventGrid');
  checkKeys(eventGrid, ['subscriptions'], 'eventGrid', problems);
  const subscriptions: ResolvedScenario['eventGrid']['subscriptions'] = [];
  const subsRaw = eventGrid.subscriptions ?? [];
  if (!Array.isArray(subsRaw)) problems.push('eventGrid.subscriptions: must be a list');
  else {
    const seen = new Set<string>();
    subsRaw.forEach((rawSub, i) => {
      const path = `eventGrid.subscriptions[${i}]`;
      if (!isObject(rawSub)) {
        problems.push(`${path}: must be a mapping`);
        return;
      }
      checkKeys(rawSub, ['name', 'vault', 'eventTypes', 'endpoint', 'schema'], path, problems);
      const name = optString(rawSub, 'name', path, problems);
      if (rawSub.name === undefined) problems.push(`${path}.name: is required`);
      if (name !== undefined && seen.has(name))
        problems.push(`${path}.name: duplicate subscription '${name}'`);
      if (name !== undefined) seen.add(name);
      const vault = optString(rawSub, 'vault', path, problems) ?? '*';
      if (vault !== '*' && !vaults.some((v) => v.name.toLowerCase() === vault.toLowerCase())) {
        problems.push(`${path}.vault: '${vault}' is not a vault of this scenario (use '*' for every vault)`);
      }
      let eventTypes: string[] = [];
      if (rawSub.eventTypes !== undefined) {
        if (!Array.isArray(rawSub.eventTypes)) problems.push(`${path}.eventTypes: must be a list`);
        else {
          rawSub.eventTypes.forEach((type, k) => {
            if (!(KEY_VAULT_SECRET_EVENT_TYPES as readonly unknown[]).includes(type)) {
              problems.push(
                `${path}.eventTypes[${k}]: '${String(type)}' is not emulated (expected one of ${KEY_VAULT_SECRET_EVENT_TYPES.join(', ')})`,
              );
            }
          });
          eventTypes = rawSub.eventTypes.filter((t): t is string => typeof t === 'string');
        }
      }
      let functionName: string | undefined;
      if (!isObject(rawSub.endpoint))
        problems.push(`${path}.endpoint: is required, as { functionName: <name> }`);
      else {
        checkKeys(rawSub.endpoint, ['functionName'], `${path}.endpoint`, problems);
        functionName = optString(rawSub.endpoint, 'functionName', `${path}.endpoint`, problems);
        if (rawSub.endpoint.functionName === undefined)
          problems.push(`${path}.endpoint.functionName: is required`);
      }
      const schema = rawSub.schema ?? 'EventGridSchema';
      if (!(EVENT_GRID_SCHEMAS as readonly unknown[]).includes(schema)) {
        problems.push(`${path}.schema: must be one of ${EVENT_GRID_SCHEMAS.join(', ')}`);
      }
      if (name !== undefined && functionName !== undefined) {
        subscriptions.push({
          name,
          vault,
          eventTypes,
          endpoint: { functionName },
          schema: schema as EventGridDeliverySchema,
        });
      }
    });
  }

  const delivery = section('delivery');
  checkKeys(delivery, ['duplicateProbability', 'maxAttempts', 'seed', 'timeoutMs'], 'delivery', problems);
  const duplicateProbability =
    optNumber(
      delivery,
      'duplicateProbability',
      'delivery',
      problems,
      (n) => n >= 0 && n <= 1,
      'a number between 0 and 1',
    ) ?? 0.1;
  const maxAttempts =
    optNumber(
      delivery,
      'maxAttempts',
      'delivery',
      problems,
      (n) => Number.isInteger(n) && n >= 1 && n <= 30,
      'an integer from 1 to 30',
    ) ?? 5;
  const deliverySeed =
    optNumber(delivery, 'seed', 'delivery', problems, Number.isInteger, 'an integer') ?? 20260101;
  // Event Grid waits 30 s for an answer; above setTimeout's range a timer would fire at once.
  const timeoutMs =
    optNumber(
      delivery,
      'timeoutMs',
      'delivery',
      problems,
      (n) => Number.isInteger(n) && n >= 1 && n <= 2_147_483_647,
      'an integer number of milliseconds from 1 to 2147483647',
    ) ?? DEFAULT_DELIVERY_TIMEOUT_MS;

  const monitor = resolveMonitorScenario(
    root.monitor,
    problems,
    start === undefined ? Date.now() : Date.parse(start),
  );
  const serviceBus = resolveServiceBusSection(root.serviceBus, problems);
  const armSection = resolveArmSection(
    root,
    { subscriptionId, resourceGroup, vaults: vaults.map((v) => ({ name: v.name, secrets: v.secrets })) },
    problems,
  );
  for (const vault of vaults) {
    for (const secret of vault.secrets) {
      if (secret.valueFrom === undefined) continue;
      const resolvedFrom = armSection.valueFrom.get(
        `${vault.name.toLowerCase()}/${secret.name.toLowerCase()}`,
      );
      if (resolvedFrom) secret.valueFrom = resolvedFrom;
      else delete secret.valueFrom;
    }
  }

  const alerting = resolveAlertingScenario(root.alerting, problems);

  if (problems.length > 0) {
    throw new ValidationError(`${source}: invalid scenario\n  - ${problems.join('\n  - ')}`, problems);
  }
  const resolved: Omit<ResolvedScenario, 'seed'> = {
    clock: { start: start === undefined ? undefined : new Date(start) },
    azure: { subscriptionId, tenantId, resourceGroup },
    keyVault: { throttling, vaults },
    eventGrid: { subscriptions },
    delivery: { duplicateProbability, maxAttempts, seed: deliverySeed, timeoutMs },
    serviceBus,
    monitor,
    arm: armSection.arm,
    consumers: armSection.consumers,
    alerting,
  };
  // No value goes into the derived seed, not even hashed: ids are public, values are not.
  // A scenario without the newer sections keeps the seed it derived before they existed.
  const content = {
    ...resolved,
    ...(root.monitor === undefined ? { monitor: undefined } : {}),
    ...(root.arm === undefined ? { arm: undefined } : {}),
    ...(root.consumers === undefined ? { consumers: undefined } : {}),
    ...(root.alerting === undefined ? { alerting: undefined } : {}),
  };
  // Service limits do not change what the world is: they stay out of the seed.
  const { throttling: _limits, ...world } = withoutSecretValues(content).keyVault;
  return {
    seed: seed ?? seedFromContent({ ...withoutSecretValues(content), keyVault: world }),
    ...resolved,
  };
}

/** The scenario with every secret value removed. */
export function withoutSecretValues<T extends Pick<ResolvedScenario, 'keyVault'>>(scenario: T): T {
  return {
    ...scenario,
    keyVault: {
      ...scenario.keyVault,
      vaults: scenario.keyVault.vaults.map((vault) => ({
        ...vault,
        secrets: vault.secrets.map((secret) => ({ ...secret, value: undefined })),
      })),
    },
  };
}

/** `keyVault.throttling`: `false`, or Key Vault's limits with the fields given replaced. */
function resolveThrottling(raw: unknown, problems: Problems): KeyVaultThrottling | false {
  const path = 'keyVault.throttling';
  if (raw === false) return false;
  if (raw === undefined || raw === null) return { ...KEY_VAULT_LIMITS };
  if (!isObject(raw)) {
    problems.push(`${path}: must be false or a mapping { limit, windowSeconds, retryAfter }`);
    return { ...KEY_VAULT_LIMITS };
  }
  checkKeys(raw, ['limit', 'windowSeconds', 'retryAfter'], path, problems);
  const limit =
    optNumber(
      raw,
      'limit',
      path,
      problems,
      (n) => Number.isInteger(n) && n >= 1 && n <= 1_000_000,
      'an integer from 1 to 1000000 (transactions per vault per window)',
    ) ?? KEY_VAULT_LIMITS.limit;
  const windowSeconds =
    optNumber(
      raw,
      'windowSeconds',
      path,
      problems,
      (n) => n > 0 && n <= 3600,
      'a number of seconds above 0, at most 3600',
    ) ?? KEY_VAULT_LIMITS.windowMs / 1000;
  if (raw.retryAfter !== undefined && typeof raw.retryAfter !== 'boolean')
    problems.push(`${path}.retryAfter: must be true or false`);
  return {
    limit,
    windowMs: Math.round(windowSeconds * 1000),
    retryAfter: raw.retryAfter === true,
  };
}

/** Parses scenario text (YAML, which includes JSON) and validates it. */
export function parseScenario(text: string, source = 'scenario'): Scenario {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (err) {
    throw new ValidationError(`${source}: not valid YAML/JSON: ${(err as Error).message}`, [
      `(file): ${(err as Error).message}`,
    ]);
  }
  resolveScenario(raw, source);
  return (raw ?? {}) as Scenario;
}

/** Reads and validates a scenario file (`.yaml`, `.yml` or `.json`). Throws a `ValidationError` naming every wrong path. */
export function loadScenario(path: string): Scenario {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ValidationError(
      `${path}: cannot read the scenario file (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
    );
  }
  return parseScenario(text, path);
}

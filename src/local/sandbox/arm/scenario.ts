/**
 * The scenario's Resource Manager estate (`arm:`), its simulated consumers (`consumers:`) and the
 * `valueFrom` of Key Vault secrets that hold one of those resources' keys. Validated like the rest of
 * the scenario: every problem at once, with its path in the file; names checked against each
 * service's naming rules; references (a consumer's cluster, a secret's resource) checked against the
 * estate. See docs/sandbox.md, "Resource Manager" and "Consumers".
 */

import { checkKeys, isObject, optNumber, optString, type Problems } from '../scenarioFields';
import { type ReplicaScale, resolveScale } from './containerAppScale';
import { type ResolvedCosmosDatabase, resolveCosmosDatabases } from './cosmosScenario';
import {
  K8S_NAME,
  MAX_SCENARIO_REPLICAS,
  type ResolvedKubeDeployment,
  resolveScaledObject,
} from './kubeObjects';
import { resourceIdOf } from './resourceId';
import { resolveSku, type SkuSpec } from './serviceBusCapacity';

export const CONSUMER_KINDS = ['aksDeployment', 'containerApp', 'webApp', 'webhook', 'reload'] as const;
export type ConsumerKind = (typeof CONSUMER_KINDS)[number];
export const ROLL_OUTCOMES = ['succeed', 'fail', 'hang'] as const;
export type RollOutcome = (typeof ROLL_OUTCOMES)[number];
export const SERVICE_BUS_RIGHTS = ['Listen', 'Send', 'Manage'] as const;
export const BACKUP_REDUNDANCIES = ['Geo', 'Local', 'Zone'] as const;
export const CONTINUOUS_TIERS = ['Continuous7Days', 'Continuous30Days'] as const;

/**
 * A Cosmos DB account's backup policy, as the account's `backupPolicy` says it: periodic (Azure's
 * default: every 240 minutes, 8 hours kept, geo-redundant storage) or continuous (point-in-time
 * restore within 7 or 30 days).
 */
export type ResolvedBackupPolicy =
  | {
      type: 'Periodic';
      intervalMinutes: number;
      retentionHours: number;
      redundancy: (typeof BACKUP_REDUNDANCIES)[number];
    }
  | { type: 'Continuous'; tier: (typeof CONTINUOUS_TIERS)[number] };

/** A Kubernetes minor version AKS offers in a region (`locations/{loc}/kubernetesVersions`). */
export interface ResolvedKubernetesVersion {
  /** `1.33` */
  version: string;
  /** Patch versions offered, ascending (`1.33.2`). */
  patches: string[];
  isPreview: boolean;
  isDefault: boolean;
  /** `KubernetesOfficial` and / or `AKSLongTermSupport`. */
  supportPlans: string[];
}

/** One quota of the Quota API (`Microsoft.Quota/usages` and `quotas`) at a provider's location scope. */
export interface ResolvedQuota {
  /** The resource provider whose quota it is (`Microsoft.Compute`). */
  provider: string;
  location: string;
  /** The quota's resource name (`standardDSv3Family`, `cores`). */
  name: string;
  displayName: string;
  usage: number;
  limit: number;
  unit: string;
  /** `isQuotaApplicable`: whether an increase can be requested through the Quota API. */
  adjustable: boolean;
}

/** Key names a `valueFrom` may take, per credential kind (the names listKeys answers with). */
export const KEY_NAMES = {
  cosmosDb: [
    'primaryMasterKey',
    'secondaryMasterKey',
    'primaryReadonlyMasterKey',
    'secondaryReadonlyMasterKey',
  ],
  storage: ['key1', 'key2'],
  serviceBusRule: ['primaryKey', 'secondaryKey'],
} as const;

export interface ResolvedAuthorizationRule {
  name: string;
  rights: string[];
  /** Canonical ARM id of the rule. */
  id: string;
  /** The queue or topic the rule belongs to (`queues/orders`), or undefined for a namespace rule. */
  entity: { type: 'queues' | 'topics'; name: string } | undefined;
}

export interface ResolvedArm {
  location: string;
  operations: { pollsBeforeDone: number; keyPropagationSeconds: number };
  cosmosDbAccounts: Array<{
    name: string;
    resourceGroup: string;
    location: string;
    /** SQL databases and containers with their throughput (`cosmosScenario.ts`). */
    databases: ResolvedCosmosDatabase[];
    backup: ResolvedBackupPolicy;
    /** Days from the clock start to the account's creation (negative: before it). */
    createdInDays: number;
    /** `disableLocalAuth`: the data plane refuses master keys. */
    disableLocalAuth: boolean;
  }>;
  storageAccounts: Array<{ name: string; resourceGroup: string; location: string }>;
  serviceBusNamespaces: Array<{
    name: string;
    resourceGroup: string;
    location: string;
    rules: ResolvedAuthorizationRule[];
    queues: string[];
    topics: string[];
    /** Tier and premium messaging units; absent: Standard. */
    sku: SkuSpec | undefined;
  }>;
  aksClusters: Array<{
    name: string;
    resourceGroup: string;
    location: string;
    /** Deployments the cluster runs (`kubeObjects.ts`): replicas and the KEDA ScaledObject scaling them. */
    deployments: ResolvedKubeDeployment[];
    /** The control plane's Kubernetes version (`1.33.2`). */
    kubernetesVersion: string;
    /** The node pool's version (default: the control plane's). */
    nodeVersion: string;
    /**
     * Entra ID (AAD) integration (`aadProfile.managed`): a run command without a `clusterToken` is
     * refused (400 `MissingAADClusterToken`), as AKS does. Default false (local accounts).
     */
    aad: boolean;
  }>;
  containerApps: Array<{ name: string; resourceGroup: string; location: string; scale?: ReplicaScale }>;
  webApps: Array<{ name: string; resourceGroup: string; location: string; kind: 'app' | 'functionapp' }>;
  /** Kubernetes versions AKS offers per location (every location without an entry: `DEFAULT_KUBERNETES_VERSIONS`). */
  kubernetesVersions: Record<string, ResolvedKubernetesVersion[]>;
  quotas: ResolvedQuota[];
}

/**
 * The Kubernetes versions the sandbox's AKS offers in a location the scenario does not describe:
 * an illustrative catalog in the published shape (not Azure's list of the day).
 */
export const DEFAULT_KUBERNETES_VERSIONS: ResolvedKubernetesVersion[] = [
  {
    version: '1.31',
    patches: ['1.31.11', '1.31.13'],
    isPreview: false,
    isDefault: false,
    supportPlans: ['AKSLongTermSupport'],
  },
  {
    version: '1.32',
    patches: ['1.32.7', '1.32.9'],
    isPreview: false,
    isDefault: false,
    supportPlans: ['KubernetesOfficial', 'AKSLongTermSupport'],
  },
  {
    version: '1.33',
    patches: ['1.33.3', '1.33.5'],
    isPreview: false,
    isDefault: true,
    supportPlans: ['KubernetesOfficial'],
  },
  {
    version: '1.34',
    patches: ['1.34.1'],
    isPreview: false,
    isDefault: false,
    supportPlans: ['KubernetesOfficial'],
  },
  {
    version: '1.35',
    patches: ['1.35.0'],
    isPreview: true,
    isDefault: false,
    supportPlans: ['KubernetesOfficial'],
  },
];
const KUBERNETES_PATCH = /^(\d+)\.(\d+)\.(\d+)$/;
const KUBERNETES_MINOR = /^(\d+)\.(\d+)$/;
const QUOTA_PROVIDER = /^[A-Za-z][A-Za-z0-9]*\.[A-Za-z][A-Za-z0-9.]*$/;
const QUOTA_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

/** Where a Key Vault secret's seeded value comes from: one key of one resource. */
export interface ResolvedValueFrom {
  /** Canonical ARM id of the credential resource (account or authorization rule). */
  resourceId: string;
  key: string;
  format: 'key' | 'connectionString';
}

export interface ResolvedConsumer {
  name: string;
  kind: ConsumerKind;
  /** aksDeployment: cluster id, namespace, deployment; containerApp / webApp: the app's id; webhook: url. */
  target:
    | { kind: 'aksDeployment'; clusterId: string; cluster: string; namespace: string; deployment: string }
    | { kind: 'containerApp'; appId: string; app: string }
    | { kind: 'webApp'; siteId: string; site: string }
    | {
        kind: 'webhook';
        url: string;
        /**
         * `signed`: the run's status URL is on another path of the hook's origin and carries its own
         * `sig` (as Logic Apps' `Location` does); `underHook` (default): `{url}/runs/{id}`.
         */
        statusUrl: 'underHook' | 'signed';
      }
    | { kind: 'reload' };
  credential: { vault: string; secret: string; resourceId: string };
  /** Minutes between two reads of the secret by the consumer itself; undefined: only a roll re-reads it. */
  reloadMinutes: number | undefined;
  roll: { seconds: number; outcome: RollOutcome; failReason: string };
  /** A URL the sandbox serves: 200 when the consumer holds only accepted keys, 503 otherwise. */
  healthUrl: string | undefined;
}

export interface ArmSection {
  arm: ResolvedArm;
  consumers: ResolvedConsumer[];
}

/** The parts of the already-validated scenario the ARM section refers to. */
export interface ArmScenarioContext {
  subscriptionId: string;
  resourceGroup: string;
  vaults: Array<{
    name: string;
    secrets: Array<{ name: string; value: string | undefined; valueFrom?: unknown }>;
  }>;
}

const NAMES = {
  cosmosDb: /^[a-z0-9][a-z0-9-]{1,42}[a-z0-9]$/,
  storage: /^[a-z0-9]{3,24}$/,
  serviceBus: /^[a-zA-Z][a-zA-Z0-9-]{4,48}[a-zA-Z0-9]$/,
  entity: /^[A-Za-z0-9][A-Za-z0-9._-]{0,259}$/,
  rule: /^[A-Za-z0-9._-]{1,256}$/,
  aks: /^[a-zA-Z0-9](?:[a-zA-Z0-9_-]{0,61}[a-zA-Z0-9])?$/,
  k8sNamespace: /^[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?$/,
  k8sName: K8S_NAME,
  containerApp: /^[a-z][a-z0-9-]{0,30}[a-z0-9]$/,
  webApp: /^[a-zA-Z0-9][a-zA-Z0-9-]{0,58}[a-zA-Z0-9]$/,
  resourceGroup: /^[-\w._()]{0,89}[-\w_()]$/,
  consumer: /^[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?$/,
  location: /^[a-z0-9]{2,40}$/,
};

const NAME_RULES: Record<keyof typeof NAMES, string> = {
  cosmosDb: '3-44 lower-case letters, digits and hyphens, not starting or ending with a hyphen',
  storage: '3-24 lower-case letters and digits',
  serviceBus: '6-50 letters, digits and hyphens, starting with a letter, ending with a letter or digit',
  entity: 'letters, digits, periods, hyphens and underscores, up to 260',
  rule: '1-256 letters, digits, periods, hyphens and underscores',
  aks: '1-63 letters, digits, hyphens and underscores, starting and ending with a letter or digit',
  k8sNamespace: 'a DNS label: 1-63 lower-case letters, digits and hyphens',
  k8sName: 'a DNS subdomain: lower-case letters, digits, hyphens and periods',
  containerApp: '2-32 lower-case letters, digits and hyphens, starting with a letter',
  webApp: '2-60 letters, digits and hyphens, not starting or ending with a hyphen',
  resourceGroup:
    '1-90 letters, digits, underscores, hyphens, periods and parentheses, not ending with a period',
  consumer: 'a DNS label: 1-63 lower-case letters, digits and hyphens',
  location: 'a location name such as westeurope',
};

function named(
  obj: Record<string, unknown>,
  key: string,
  rule: keyof typeof NAMES,
  path: string,
  problems: Problems,
): string | undefined {
  const value = optString(obj, key, path, problems);
  if (value === undefined) {
    if (obj[key] === undefined) problems.push(`${path}.${key}: is required`);
    return undefined;
  }
  if (!NAMES[rule].test(value)) {
    problems.push(`${path}.${key}: '${value}' is not a valid name (${NAME_RULES[rule]})`);
    return undefined;
  }
  return value;
}

function list(value: unknown, path: string, problems: Problems): Record<string, unknown>[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) {
    problems.push(`${path}: must be a list`);
    return [];
  }
  const out: Record<string, unknown>[] = [];
  value.forEach((item, i) => {
    if (isObject(item)) out.push(item);
    else problems.push(`${path}[${i}]: must be a mapping`);
  });
  return out;
}

/** Hosts the sandbox must not take over for a consumer's webhook or health URL: Azure's own. */
const AZURE_HOSTS =
  /(^|\.)(azure\.com|azure\.net|windows\.net|microsoftonline\.com|microsoft\.com|azure-api\.net|azurecr\.io)$/;

function url(
  obj: Record<string, unknown>,
  key: string,
  path: string,
  problems: Problems,
): string | undefined {
  const value = optString(obj, key, path, problems);
  if (value === undefined) return undefined;
  let parsed: URL;
  try {
    parsed = new URL(value);
  } catch {
    problems.push(`${path}.${key}: must be an absolute https URL`);
    return undefined;
  }
  if (parsed.protocol !== 'https:') problems.push(`${path}.${key}: must be an https URL`);
  else if (
    AZURE_HOSTS.test(parsed.hostname) ||
    parsed.hostname === 'localhost' ||
    /^[\d.]+$/.test(parsed.hostname)
  ) {
    problems.push(
      `${path}.${key}: '${parsed.hostname}' cannot be a consumer's host (Azure and loopback hosts are the sandbox's or the host's)`,
    );
  } else if (parsed.search !== '' || parsed.hash !== '')
    problems.push(`${path}.${key}: must not have a query or fragment`);
  else return parsed.toString();
  return undefined;
}

/**
 * Validates `arm:` and `consumers:` (raw, as in the file) and every secret's `valueFrom`, pushing
 * problems with their paths. Returns the resolved sections and, per vault/secret, where a seeded value
 * comes from.
 */
export function resolveArmSection(
  root: Record<string, unknown>,
  ctx: ArmScenarioContext,
  problems: Problems,
): ArmSection & { valueFrom: Map<string, ResolvedValueFrom> } {
  const rawArm = root.arm ?? {};
  const armObj: Record<string, unknown> = isObject(rawArm) ? rawArm : {};
  if (!isObject(rawArm)) problems.push('arm: must be a mapping');
  checkKeys(
    armObj,
    [
      'location',
      'operations',
      'cosmosDbAccounts',
      'storageAccounts',
      'serviceBusNamespaces',
      'aksClusters',
      'containerApps',
      'webApps',
      'kubernetesVersions',
      'quotas',
    ],
    'arm',
    problems,
  );
  let location = 'westeurope';
  if (armObj.location !== undefined) {
    const given = optString(armObj, 'location', 'arm', problems);
    if (given !== undefined && NAMES.location.test(given)) location = given;
    else if (given !== undefined) problems.push(`arm.location: '${given}' is not ${NAME_RULES.location}`);
  }
  let pollsBeforeDone = 0;
  let keyPropagationSeconds = 0;
  if (armObj.operations !== undefined) {
    if (!isObject(armObj.operations)) problems.push('arm.operations: must be a mapping');
    else {
      checkKeys(armObj.operations, ['pollsBeforeDone', 'keyPropagationSeconds'], 'arm.operations', problems);
      pollsBeforeDone =
        optNumber(
          armObj.operations,
          'pollsBeforeDone',
          'arm.operations',
          problems,
          (n) => Number.isInteger(n) && n >= 0 && n <= 100,
          'an integer from 0 to 100',
        ) ?? 0;
      keyPropagationSeconds =
        optNumber(
          armObj.operations,
          'keyPropagationSeconds',
          'arm.operations',
          problems,
          (n) => Number.isInteger(n) && n >= 0 && n <= 86_400,
          'an integer from 0 to 86400',
        ) ?? 0;
    }
  }
  const used = new Map<string, string>();
  const common = (raw: Record<string, unknown>, path: string, rule: keyof typeof NAMES, extra: string[]) => {
    checkKeys(raw, ['name', 'resourceGroup', 'location', ...extra], path, problems);
    const name = named(raw, 'name', rule, path, problems);
    let resourceGroup = ctx.resourceGroup;
    if (raw.resourceGroup !== undefined) {
      const rg = named(raw, 'resourceGroup', 'resourceGroup', path, problems);
      if (rg !== undefined) resourceGroup = rg;
    }
    let loc = location;
    if (raw.location !== undefined) {
      const given = optString(raw, 'location', path, problems);
      if (given !== undefined && NAMES.location.test(given)) loc = given;
      else if (given !== undefined)
        problems.push(`${path}.location: '${given}' is not ${NAME_RULES.location}`);
    }
    if (name !== undefined) {
      const key = `${rule}/${name.toLowerCase()}`;
      const first = used.get(key);
      if (first) problems.push(`${path}.name: '${name}' is already used by ${first}`);
      else used.set(key, path);
    }
    return name === undefined ? undefined : { name, resourceGroup, location: loc };
  };

  const arm: ResolvedArm = {
    location,
    operations: { pollsBeforeDone, keyPropagationSeconds },
    cosmosDbAccounts: [],
    storageAccounts: [],
    serviceBusNamespaces: [],
    aksClusters: [],
    containerApps: [],
    webApps: [],
    kubernetesVersions: {},
    quotas: [],
  };
  list(armObj.cosmosDbAccounts, 'arm.cosmosDbAccounts', problems).forEach((raw, i) => {
    const path = `arm.cosmosDbAccounts[${i}]`;
    const base = common(raw, path, 'cosmosDb', ['databases', 'backup', 'createdInDays', 'disableLocalAuth']);
    const backup = resolveBackup(raw.backup, `${path}.backup`, problems);
    const createdInDays =
      optNumber(
        raw,
        'createdInDays',
        path,
        problems,
        (n) => n <= 0 && n >= -3650,
        'a number of days from -3650 to 0',
      ) ?? -365;
    if (raw.disableLocalAuth !== undefined && typeof raw.disableLocalAuth !== 'boolean')
      problems.push(`${path}.disableLocalAuth: must be true or false`);
    const databases = resolveCosmosDatabases(raw.databases, `${path}.databases`, problems);
    if (base)
      arm.cosmosDbAccounts.push({
        ...base,
        databases,
        backup,
        createdInDays,
        disableLocalAuth: raw.disableLocalAuth === true,
      });
  });
  list(armObj.storageAccounts, 'arm.storageAccounts', problems).forEach((raw, i) => {
    const base = common(raw, `arm.storageAccounts[${i}]`, 'storage', []);
    if (base) arm.storageAccounts.push(base);
  });
  list(armObj.serviceBusNamespaces, 'arm.serviceBusNamespaces', problems).forEach((raw, i) => {
    const path = `arm.serviceBusNamespaces[${i}]`;
    const base = common(raw, path, 'serviceBus', ['authorizationRules', 'queues', 'topics', 'sku']);
    const sku = resolveSku(raw.sku, `${path}.sku`, problems);
    if (!base) return;
    const nsId = (chain: Array<{ type: string; name: string }>) =>
      resourceIdOf(ctx.subscriptionId, base.resourceGroup, 'Microsoft.ServiceBus', [
        { type: 'namespaces', name: base.name },
        ...chain,
      ]);
    const rulesOf = (value: unknown, rpath: string, entity: ResolvedAuthorizationRule['entity']) => {
      const seen = new Set<string>();
      const out: ResolvedAuthorizationRule[] = [];
      list(value, rpath, problems).forEach((rawRule, k) => {
        const p = `${rpath}[${k}]`;
        checkKeys(rawRule, ['name', 'rights'], p, problems);
        const name = named(rawRule, 'name', 'rule', p, problems);
        let rights: string[] = [];
        if (!Array.isArray(rawRule.rights) || rawRule.rights.length === 0) {
          problems.push(`${p}.rights: must be a non-empty list of ${SERVICE_BUS_RIGHTS.join(', ')}`);
        } else {
          rights = rawRule.rights.filter((r): r is string =>
            (SERVICE_BUS_RIGHTS as readonly unknown[]).includes(r),
          );
          if (rights.length !== rawRule.rights.length)
            problems.push(`${p}.rights: each right must be one of ${SERVICE_BUS_RIGHTS.join(', ')}`);
          // Manage implies Send and Listen: Service Bus refuses a Manage-only rule.
          if (rights.includes('Manage') && !(rights.includes('Send') && rights.includes('Listen')))
            problems.push(`${p}.rights: Manage requires Send and Listen too, as Service Bus requires`);
        }
        if (name === undefined) return;
        if (seen.has(name.toLowerCase())) problems.push(`${p}.name: duplicate rule '${name}'`);
        seen.add(name.toLowerCase());
        const chain = entity
          ? [
              { type: entity.type, name: entity.name },
              { type: 'authorizationRules', name },
            ]
          : [{ type: 'authorizationRules', name }];
        out.push({ name, rights, id: nsId(chain), entity });
      });
      return out;
    };
    const rules = rulesOf(raw.authorizationRules, `${path}.authorizationRules`, undefined);
    const queues: string[] = [];
    const topics: string[] = [];
    for (const type of ['queues', 'topics'] as const) {
      const seen = new Set<string>();
      list(raw[type], `${path}.${type}`, problems).forEach((rawEntity, k) => {
        const p = `${path}.${type}[${k}]`;
        checkKeys(rawEntity, ['name', 'authorizationRules'], p, problems);
        const name = named(rawEntity, 'name', 'entity', p, problems);
        if (name === undefined) return;
        if (seen.has(name.toLowerCase()))
          problems.push(`${p}.name: duplicate ${type.slice(0, -1)} '${name}'`);
        seen.add(name.toLowerCase());
        (type === 'queues' ? queues : topics).push(name);
        rules.push(...rulesOf(rawEntity.authorizationRules, `${p}.authorizationRules`, { type, name }));
      });
    }
    arm.serviceBusNamespaces.push({ ...base, rules, queues, topics, sku });
  });
  list(armObj.aksClusters, 'arm.aksClusters', problems).forEach((raw, i) => {
    const path = `arm.aksClusters[${i}]`;
    const base = common(raw, path, 'aks', ['deployments', 'kubernetesVersion', 'nodeVersion', 'aad']);
    if (raw.aad !== undefined && typeof raw.aad !== 'boolean') problems.push(`${path}.aad: true or false`);
    const version = (key: string, fallback: string) => {
      const value = optString(raw, key, path, problems);
      if (value !== undefined && !KUBERNETES_PATCH.test(value)) {
        problems.push(`${path}.${key}: '${value}' is not a Kubernetes patch version (1.33.2)`);
        return fallback;
      }
      return value ?? fallback;
    };
    const kubernetesVersion = version('kubernetesVersion', '1.33.3');
    const nodeVersion = version('nodeVersion', kubernetesVersion);
    const deployments: ResolvedKubeDeployment[] = [];
    const seenDeployments = new Map<string, string>();
    const seenScaledObjects = new Map<string, string>();
    list(raw.deployments, `${path}.deployments`, problems).forEach((rawDep, k) => {
      const p = `${path}.deployments[${k}]`;
      checkKeys(rawDep, ['namespace', 'name', 'replicas', 'scaledObject'], p, problems);
      const namespace = named(rawDep, 'namespace', 'k8sNamespace', p, problems);
      const name = named(rawDep, 'name', 'k8sName', p, problems);
      const replicas =
        optNumber(
          rawDep,
          'replicas',
          p,
          problems,
          (n) => Number.isInteger(n) && n >= 0 && n <= MAX_SCENARIO_REPLICAS,
          `an integer from 0 to ${MAX_SCENARIO_REPLICAS}`,
        ) ?? 1;
      const scaledObject = resolveScaledObject(rawDep.scaledObject, name, `${p}.scaledObject`, problems);
      if (namespace === undefined || name === undefined) return;
      const key = `${namespace}/${name}`;
      const first = seenDeployments.get(key);
      if (first) problems.push(`${p}: deployment ${key} is already listed at ${first}`);
      else seenDeployments.set(key, p);
      if (scaledObject) {
        const soKey = `${namespace}/${scaledObject.name}`;
        const firstSo = seenScaledObjects.get(soKey);
        if (firstSo)
          problems.push(`${p}.scaledObject.name: ScaledObject ${soKey} is already used at ${firstSo}`);
        else seenScaledObjects.set(soKey, `${p}.scaledObject`);
      }
      deployments.push({ namespace, name, replicas, scaledObject });
    });
    if (base)
      arm.aksClusters.push({ ...base, deployments, kubernetesVersion, nodeVersion, aad: raw.aad === true });
  });
  list(armObj.containerApps, 'arm.containerApps', problems).forEach((raw, i) => {
    const base = common(raw, `arm.containerApps[${i}]`, 'containerApp', ['scale']);
    const scale = resolveScale(raw.scale, `arm.containerApps[${i}].scale`, problems);
    if (base) arm.containerApps.push({ ...base, ...(scale ? { scale } : {}) });
  });
  list(armObj.webApps, 'arm.webApps', problems).forEach((raw, i) => {
    const path = `arm.webApps[${i}]`;
    const base = common(raw, path, 'webApp', ['kind']);
    const kind = raw.kind ?? 'app';
    if (kind !== 'app' && kind !== 'functionapp') problems.push(`${path}.kind: must be app or functionapp`);
    if (base) arm.webApps.push({ ...base, kind: kind === 'functionapp' ? 'functionapp' : 'app' });
  });

  arm.kubernetesVersions = resolveKubernetesVersions(armObj.kubernetesVersions, problems);
  arm.quotas = resolveQuotas(armObj.quotas, location, problems);

  const credentials = credentialIndex(ctx.subscriptionId, arm);
  const valueFrom = new Map<string, ResolvedValueFrom>();
  ctx.vaults.forEach((vault, i) => {
    vault.secrets.forEach((secret, j) => {
      if (secret.valueFrom === undefined) return;
      const path = `keyVault.vaults[${i}].secrets[${j}].valueFrom`;
      if (secret.value !== undefined) problems.push(`${path}: give either value or valueFrom, not both`);
      const resolved = resolveValueFrom(secret.valueFrom, path, credentials, problems);
      if (resolved) valueFrom.set(`${vault.name.toLowerCase()}/${secret.name.toLowerCase()}`, resolved);
    });
  });

  const consumers = resolveConsumers(root.consumers, ctx, arm, credentials, problems);
  return { arm, consumers, valueFrom };
}

function resolveBackup(raw: unknown, path: string, problems: Problems): ResolvedBackupPolicy {
  const periodic: ResolvedBackupPolicy = {
    type: 'Periodic',
    intervalMinutes: 240,
    retentionHours: 8,
    redundancy: 'Geo',
  };
  if (raw === undefined) return periodic;
  if (!isObject(raw)) {
    problems.push(`${path}: must be a mapping { type: Periodic | Continuous, ... }`);
    return periodic;
  }
  if (raw.type === 'Continuous') {
    checkKeys(raw, ['type', 'tier'], path, problems);
    const tier = raw.tier ?? 'Continuous30Days';
    if (!(CONTINUOUS_TIERS as readonly unknown[]).includes(tier))
      problems.push(`${path}.tier: must be one of ${CONTINUOUS_TIERS.join(', ')}`);
    return {
      type: 'Continuous',
      tier: (CONTINUOUS_TIERS as readonly unknown[]).includes(tier)
        ? (tier as (typeof CONTINUOUS_TIERS)[number])
        : 'Continuous30Days',
    };
  }
  if (raw.type !== undefined && raw.type !== 'Periodic') {
    problems.push(`${path}.type: must be Periodic or Continuous`);
    return periodic;
  }
  checkKeys(raw, ['type', 'intervalMinutes', 'retentionHours', 'redundancy'], path, problems);
  // The ranges Azure accepts (Cosmos DB "periodic backup": interval 1 to 24 hours, retention 8 to 720 hours).
  const intervalMinutes =
    optNumber(
      raw,
      'intervalMinutes',
      path,
      problems,
      (n) => Number.isInteger(n) && n >= 60 && n <= 1440,
      'an integer from 60 to 1440',
    ) ?? 240;
  const retentionHours =
    optNumber(
      raw,
      'retentionHours',
      path,
      problems,
      (n) => Number.isInteger(n) && n >= 8 && n <= 720,
      'an integer from 8 to 720',
    ) ?? 8;
  const redundancy = raw.redundancy ?? 'Geo';
  if (!(BACKUP_REDUNDANCIES as readonly unknown[]).includes(redundancy))
    problems.push(`${path}.redundancy: must be one of ${BACKUP_REDUNDANCIES.join(', ')}`);
  return {
    type: 'Periodic',
    intervalMinutes,
    retentionHours,
    redundancy: (BACKUP_REDUNDANCIES as readonly unknown[]).includes(redundancy)
      ? (redundancy as (typeof BACKUP_REDUNDANCIES)[number])
      : 'Geo',
  };
}

function resolveKubernetesVersions(
  raw: unknown,
  problems: Problems,
): Record<string, ResolvedKubernetesVersion[]> {
  const out: Record<string, ResolvedKubernetesVersion[]> = {};
  if (raw === undefined) return out;
  if (!isObject(raw)) {
    problems.push('arm.kubernetesVersions: must be a mapping of location to a list of versions');
    return out;
  }
  for (const [location, versions] of Object.entries(raw)) {
    const base = `arm.kubernetesVersions.${location}`;
    if (!NAMES.location.test(location)) problems.push(`${base}: '${location}' is not ${NAME_RULES.location}`);
    const resolved: ResolvedKubernetesVersion[] = [];
    list(versions, base, problems).forEach((rv, i) => {
      const path = `${base}[${i}]`;
      checkKeys(rv, ['version', 'patches', 'isPreview', 'isDefault', 'supportPlans'], path, problems);
      const version = optString(rv, 'version', path, problems);
      if (version === undefined || !KUBERNETES_MINOR.test(version)) {
        problems.push(`${path}.version: a Kubernetes minor version such as 1.33`);
        return;
      }
      const patches = Array.isArray(rv.patches) ? rv.patches : [];
      if (
        patches.length === 0 ||
        patches.some(
          (p) => typeof p !== 'string' || !KUBERNETES_PATCH.test(p) || !p.startsWith(`${version}.`),
        )
      ) {
        problems.push(`${path}.patches: a non-empty list of patch versions of ${version} (${version}.1)`);
        return;
      }
      const plans = rv.supportPlans ?? ['KubernetesOfficial'];
      if (
        !Array.isArray(plans) ||
        plans.length === 0 ||
        plans.some((p) => p !== 'KubernetesOfficial' && p !== 'AKSLongTermSupport')
      )
        problems.push(`${path}.supportPlans: KubernetesOfficial and / or AKSLongTermSupport`);
      for (const key of ['isPreview', 'isDefault']) {
        if (rv[key] !== undefined && typeof rv[key] !== 'boolean')
          problems.push(`${path}.${key}: must be true or false`);
      }
      resolved.push({
        version,
        patches: [...(patches as string[])].sort(compareVersions),
        isPreview: rv.isPreview === true,
        isDefault: rv.isDefault === true,
        supportPlans: Array.isArray(plans) ? (plans as string[]) : ['KubernetesOfficial'],
      });
    });
    out[location] = resolved.sort((a, b) => compareVersions(a.version, b.version));
  }
  return out;
}

/** Compares dotted version numbers numerically (`1.9` < `1.10`). */
export function compareVersions(a: string, b: string): number {
  const x = a.split('.').map(Number);
  const y = b.split('.').map(Number);
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d = (x[i] ?? 0) - (y[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

function resolveQuotas(raw: unknown, defaultLocation: string, problems: Problems): ResolvedQuota[] {
  const out: ResolvedQuota[] = [];
  const seen = new Set<string>();
  list(raw, 'arm.quotas', problems).forEach((rq, i) => {
    const path = `arm.quotas[${i}]`;
    checkKeys(
      rq,
      ['provider', 'location', 'name', 'displayName', 'usage', 'limit', 'unit', 'adjustable'],
      path,
      problems,
    );
    const provider = optString(rq, 'provider', path, problems) ?? 'Microsoft.Compute';
    if (!QUOTA_PROVIDER.test(provider))
      problems.push(`${path}.provider: a resource provider such as Microsoft.Compute`);
    const location = optString(rq, 'location', path, problems) ?? defaultLocation;
    if (!NAMES.location.test(location))
      problems.push(`${path}.location: '${location}' is not ${NAME_RULES.location}`);
    const name = optString(rq, 'name', path, problems);
    if (name === undefined || !QUOTA_NAME.test(name)) {
      problems.push(`${path}.name: a quota resource name such as standardDSv3Family`);
      return;
    }
    const whole = (n: number) => Number.isInteger(n) && n >= 0 && n <= 1e12;
    const usage = optNumber(rq, 'usage', path, problems, whole, 'a whole number from 0');
    const limit = optNumber(rq, 'limit', path, problems, whole, 'a whole number from 0');
    if (usage === undefined || limit === undefined) {
      problems.push(`${path}: usage and limit are required`);
      return;
    }
    if (rq.adjustable !== undefined && typeof rq.adjustable !== 'boolean')
      problems.push(`${path}.adjustable: must be true or false`);
    const key = `${provider}/${location}/${name}`.toLowerCase();
    if (seen.has(key))
      problems.push(`${path}.name: '${name}' is already given for ${provider} in ${location}`);
    seen.add(key);
    out.push({
      provider,
      location,
      name,
      displayName: optString(rq, 'displayName', path, problems) ?? name,
      usage,
      limit,
      unit: optString(rq, 'unit', path, problems) ?? 'Count',
      adjustable: rq.adjustable !== false,
    });
  });
  return out;
}

interface CredentialEntry {
  id: string;
  kind: keyof typeof KEY_NAMES;
}

/** Short references (`cosmosDb/acct`, `serviceBus/ns/rule`, `serviceBus/ns/queues/q/rule`) and ids -> the credential. */
function credentialIndex(subscriptionId: string, arm: ResolvedArm): Map<string, CredentialEntry> {
  const index = new Map<string, CredentialEntry>();
  const add = (refs: string[], entry: CredentialEntry) => {
    for (const ref of [...refs, entry.id]) index.set(ref.toLowerCase(), entry);
  };
  for (const a of arm.cosmosDbAccounts) {
    add([`cosmosDb/${a.name}`], {
      id: resourceIdOf(subscriptionId, a.resourceGroup, 'Microsoft.DocumentDB', [
        { type: 'databaseAccounts', name: a.name },
      ]),
      kind: 'cosmosDb',
    });
  }
  for (const a of arm.storageAccounts) {
    add([`storage/${a.name}`], {
      id: resourceIdOf(subscriptionId, a.resourceGroup, 'Microsoft.Storage', [
        { type: 'storageAccounts', name: a.name },
      ]),
      kind: 'storage',
    });
  }
  for (const ns of arm.serviceBusNamespaces) {
    for (const rule of ns.rules) {
      const ref = rule.entity
        ? `serviceBus/${ns.name}/${rule.entity.type}/${rule.entity.name}/${rule.name}`
        : `serviceBus/${ns.name}/${rule.name}`;
      add([ref], { id: rule.id, kind: 'serviceBusRule' });
    }
  }
  return index;
}

function resolveValueFrom(
  raw: unknown,
  path: string,
  credentials: Map<string, CredentialEntry>,
  problems: Problems,
): ResolvedValueFrom | undefined {
  if (!isObject(raw)) {
    problems.push(`${path}: must be a mapping { resource, key, format? }`);
    return undefined;
  }
  checkKeys(raw, ['resource', 'key', 'format'], path, problems);
  const resource = optString(raw, 'resource', path, problems);
  if (resource === undefined) {
    if (raw.resource === undefined) problems.push(`${path}.resource: is required`);
    return undefined;
  }
  const entry = credentials.get(resource.toLowerCase());
  if (!entry) {
    problems.push(
      `${path}.resource: '${resource}' is not a credential resource of this scenario (cosmosDb/<account>, storage/<account>, serviceBus/<namespace>/<rule>, serviceBus/<namespace>/queues|topics/<entity>/<rule>, or its ARM id)`,
    );
    return undefined;
  }
  const key = optString(raw, 'key', path, problems);
  const names: readonly string[] = KEY_NAMES[entry.kind];
  if (key === undefined || !names.includes(key)) {
    problems.push(`${path}.key: must be one of ${names.join(', ')}`);
    return undefined;
  }
  const format = raw.format ?? 'key';
  if (format !== 'key' && format !== 'connectionString') {
    problems.push(`${path}.format: must be key or connectionString`);
    return undefined;
  }
  return { resourceId: entry.id, key, format };
}

function resolveConsumers(
  raw: unknown,
  ctx: ArmScenarioContext,
  arm: ResolvedArm,
  credentials: Map<string, CredentialEntry>,
  problems: Problems,
): ResolvedConsumer[] {
  const out: ResolvedConsumer[] = [];
  const seen = new Set<string>();
  const urls = new Map<string, string>();
  list(raw, 'consumers', problems).forEach((rc, i) => {
    const path = `consumers[${i}]`;
    checkKeys(
      rc,
      [
        'name',
        'kind',
        'cluster',
        'namespace',
        'deployment',
        'app',
        'site',
        'url',
        'reloadMinutes',
        'credential',
        'roll',
        'healthUrl',
        'statusUrl',
      ],
      path,
      problems,
    );
    const name = named(rc, 'name', 'consumer', path, problems);
    if (name !== undefined) {
      if (seen.has(name)) problems.push(`${path}.name: duplicate consumer '${name}'`);
      seen.add(name);
    }
    const kind = rc.kind;
    if (!(CONSUMER_KINDS as readonly unknown[]).includes(kind)) {
      problems.push(`${path}.kind: must be one of ${CONSUMER_KINDS.join(', ')}`);
      return;
    }
    const forbid = (keys: string[]) => {
      for (const key of keys)
        if (rc[key] !== undefined)
          problems.push(`${path}.${key}: does not apply to a ${String(kind)} consumer`);
    };
    let target: ResolvedConsumer['target'] | undefined;
    const find = <T extends { name: string; resourceGroup: string }>(
      items: T[],
      key: string,
      what: string,
    ) => {
      const ref = optString(rc, key, path, problems);
      if (ref === undefined) {
        if (rc[key] === undefined)
          problems.push(`${path}.${key}: is required for a ${String(kind)} consumer`);
        return undefined;
      }
      const found = items.find((item) => item.name.toLowerCase() === ref.toLowerCase());
      if (!found) problems.push(`${path}.${key}: '${ref}' is not one of the scenario's ${what}`);
      return found;
    };
    switch (kind as ConsumerKind) {
      case 'aksDeployment': {
        forbid(['app', 'site', 'url', 'statusUrl']);
        const cluster = find(arm.aksClusters, 'cluster', 'arm.aksClusters');
        const namespace = named(rc, 'namespace', 'k8sNamespace', path, problems);
        const deployment = named(rc, 'deployment', 'k8sName', path, problems);
        if (cluster && namespace && deployment) {
          target = {
            kind: 'aksDeployment',
            cluster: cluster.name,
            clusterId: resourceIdOf(ctx.subscriptionId, cluster.resourceGroup, 'Microsoft.ContainerService', [
              { type: 'managedClusters', name: cluster.name },
            ]),
            namespace,
            deployment,
          };
        }
        break;
      }
      case 'containerApp': {
        forbid(['cluster', 'namespace', 'deployment', 'site', 'url', 'statusUrl']);
        const app = find(arm.containerApps, 'app', 'arm.containerApps');
        if (app) {
          target = {
            kind: 'containerApp',
            app: app.name,
            appId: resourceIdOf(ctx.subscriptionId, app.resourceGroup, 'Microsoft.App', [
              { type: 'containerApps', name: app.name },
            ]),
          };
        }
        break;
      }
      case 'webApp': {
        forbid(['cluster', 'namespace', 'deployment', 'app', 'url', 'statusUrl']);
        const site = find(arm.webApps, 'site', 'arm.webApps');
        if (site) {
          target = {
            kind: 'webApp',
            site: site.name,
            siteId: resourceIdOf(ctx.subscriptionId, site.resourceGroup, 'Microsoft.Web', [
              { type: 'sites', name: site.name },
            ]),
          };
        }
        break;
      }
      case 'webhook': {
        forbid(['cluster', 'namespace', 'deployment', 'app', 'site']);
        const hook = url(rc, 'url', path, problems);
        if (hook === undefined && rc.url === undefined)
          problems.push(`${path}.url: is required for a webhook consumer`);
        const statusUrl = rc.statusUrl ?? 'underHook';
        if (statusUrl !== 'underHook' && statusUrl !== 'signed')
          problems.push(`${path}.statusUrl: must be underHook or signed`);
        if (hook !== undefined)
          target = { kind: 'webhook', url: hook, statusUrl: statusUrl === 'signed' ? 'signed' : 'underHook' };
        break;
      }
      case 'reload':
        forbid(['cluster', 'namespace', 'deployment', 'app', 'site', 'url', 'statusUrl']);
        if (rc.reloadMinutes === undefined)
          problems.push(`${path}.reloadMinutes: is required for a reload consumer`);
        target = { kind: 'reload' };
        break;
    }
    const reloadMinutes = optNumber(
      rc,
      'reloadMinutes',
      path,
      problems,
      (n) => n > 0 && n <= 7 * 24 * 60,
      'a number of minutes above 0, at most 10080 (a week)',
    );

    let credential: ResolvedConsumer['credential'] | undefined;
    if (!isObject(rc.credential))
      problems.push(`${path}.credential: is required, as { vault, secret, resource }`);
    else {
      const cp = `${path}.credential`;
      checkKeys(rc.credential, ['vault', 'secret', 'resource'], cp, problems);
      const vault = optString(rc.credential, 'vault', cp, problems);
      const secret = optString(rc.credential, 'secret', cp, problems);
      const resource = optString(rc.credential, 'resource', cp, problems);
      const v =
        vault === undefined
          ? undefined
          : ctx.vaults.find((x) => x.name.toLowerCase() === vault.toLowerCase());
      if (vault === undefined || secret === undefined || resource === undefined) {
        problems.push(`${cp}: vault, secret and resource are all required`);
      } else if (!v) problems.push(`${cp}.vault: '${vault}' is not a vault of this scenario`);
      else if (!v.secrets.some((s) => s.name.toLowerCase() === secret.toLowerCase())) {
        problems.push(`${cp}.secret: '${secret}' is not a secret of vault '${v.name}'`);
      } else {
        const entry = credentials.get(resource.toLowerCase());
        if (!entry)
          problems.push(`${cp}.resource: '${resource}' is not a credential resource of this scenario`);
        else credential = { vault: v.name, secret, resourceId: entry.id };
      }
    }

    let roll: ResolvedConsumer['roll'] = { seconds: 60, outcome: 'succeed', failReason: '' };
    if (rc.roll !== undefined) {
      if (!isObject(rc.roll))
        problems.push(`${path}.roll: must be a mapping { seconds?, outcome?, failReason? }`);
      else {
        const rp = `${path}.roll`;
        checkKeys(rc.roll, ['seconds', 'outcome', 'failReason'], rp, problems);
        const seconds =
          optNumber(
            rc.roll,
            'seconds',
            rp,
            problems,
            (n) => n >= 0 && n <= 86_400,
            'a number of seconds from 0 to 86400',
          ) ?? 60;
        const outcome = rc.roll.outcome ?? 'succeed';
        if (!(ROLL_OUTCOMES as readonly unknown[]).includes(outcome))
          problems.push(`${rp}.outcome: must be one of ${ROLL_OUTCOMES.join(', ')}`);
        const failReason = optString(rc.roll, 'failReason', rp, problems) ?? '';
        roll = { seconds, outcome: outcome as RollOutcome, failReason };
      }
    }
    const healthUrl = rc.healthUrl === undefined ? undefined : url(rc, 'healthUrl', path, problems);
    for (const [key, value] of [
      ['url', target?.kind === 'webhook' ? target.url : undefined],
      ['healthUrl', healthUrl],
    ] as const) {
      if (value === undefined) continue;
      const owner = urls.get(value);
      if (owner !== undefined) problems.push(`${path}.${key}: ${value} is already served for ${owner}`);
      else urls.set(value, `${path}.${key}`);
    }
    if (name !== undefined && target && credential) {
      out.push({ name, kind: kind as ConsumerKind, target, credential, reloadMinutes, roll, healthUrl });
    }
  });
  return out;
}

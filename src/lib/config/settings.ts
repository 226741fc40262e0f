/**
 * Settings from the environment (app settings in Azure, `local.settings.json` / the shell locally),
 * validated once. This folder is the only place that reads `process.env`.
 *
 * Messages name the setting and what is expected, never its value: some settings are secrets
 * (the storage connection string, webhook URLs).
 */
import { isAbsolute, resolve } from 'node:path';
import { ConfigurationError } from '../core/errors';
import { registerSecret } from '../core/redact';
import { isLoopbackHttpUrl } from '../core/urls';
import { extensionBundleFrom, FLEX_DEFAULT_FUNCTION_TIMEOUT_MS, functionTimeoutFrom } from './hostJson';
import type { Policy } from './policy';
import { keyVaultUrl } from './vaults';

export interface Settings {
  /**
   * `AzureWebJobsStorage`; `UseDevelopmentStorage=true` is expanded to Azurite on 127.0.0.1. Secret.
   * Empty when storage is reached with the app's identity (`storageIdentity`).
   */
  storageConnectionString: string;
  /**
   * Identity-based storage, as the Functions host reads it: `AzureWebJobsStorage__accountName`, or
   * `AzureWebJobsStorage__tableServiceUri` + `__queueServiceUri`. The app then holds no storage key.
   */
  storageIdentity?: { tableServiceUrl: string; queueServiceUrl: string; blobServiceUrl?: string };
  /** Whether `AzureWebJobsStorage` was `UseDevelopmentStorage=true`. */
  usesDevelopmentStorage: boolean;
  /** `STAMPKEEPER_POLICY_PATH`, absolute (relative paths resolve against the app root = cwd). */
  policyPath: string;
  /** `STAMPKEEPER_ENVIRONMENT`, e.g. `local`, `prod-weu`. */
  environment: string;
  /** `STAMPKEEPER_EVENTGRID_TOPIC_ENDPOINT`: https URL of the Event Grid custom topic. */
  eventGridTopicEndpoint?: string;
  /** `STAMPKEEPER_TABLE_PREFIX`: every table name is this prefix + a suffix of up to 20 characters. */
  tablePrefix: string;
  /** `STAMPKEEPER_WORK_QUEUE`: the Storage queue that advances runs. */
  workQueueName: string;
  /** `STAMPKEEPER_DRY_RUN`: plan and audit, change nothing. */
  dryRun: boolean;
  /** `STAMPKEEPER_AUDIT_RETENTION_DAYS`. */
  auditRetentionDays: number;
  /** `STAMPKEEPER_IDEMPOTENCY_TTL_HOURS`. */
  idempotencyTtlHours: number;
  /** `AZURE_CLIENT_ID`: client id of a user-assigned managed identity. */
  managedIdentityClientId?: string;
  /**
   * host.json's `functionTimeout` (Flex Consumption's 30 minutes when absent): claims and leases
   * that protect work in progress are longer than this.
   */
  functionTimeoutMs: number;
  /** host.json's `extensionBundle` (what the platform version check compares with its support data). */
  extensionBundle?: { id: string; version: string };
  /**
   * `STAMPKEEPER_ALLOWED_VAULTS`: vaults (names or URLs, comma-separated) whose events the app may
   * read and report besides the vaults the policy names. Normalised URLs. Events naming any other
   * vault are rejected without a call.
   */
  allowedVaults: string[];
  /**
   * `WEBSITE_AUTH_ENABLED`, set by the platform when built-in authentication (Easy Auth) is on: only
   * then are the `X-MS-CLIENT-PRINCIPAL*` headers the platform's and not a client's. The local host
   * sets it when it emulates built-in authentication.
   */
  authEnabled: boolean;
  /**
   * The app's host name, read when asked (the local host knows its port only once it listens):
   * `WEBSITE_HOSTNAME`, which the platform sets (`<app>.azurewebsites.net`) and the local host sets
   * once it listens (`127.0.0.1:<port>`, as Core Tools sets `localhost:<port>`). Where callbacks to
   * the app (callback webhooks of rotation rolls) are sent.
   */
  hostName(): string | undefined;
  /**
   * The value of any other app setting (e.g. a channel's `urlSetting`), or `undefined` when unset
   * or blank. Not registered for redaction (a short common value would blank out logs):
   * `checkPolicyAgainstSettings` registers the channel URLs, which are secrets.
   */
  settingValue(name: string): string | undefined;
}

export interface LoadSettingsOptions {
  /** The app root against which relative paths resolve. Default: see `appRootFrom`. */
  appRoot?: string;
}

export const DEFAULT_POLICY_PATH = 'policy/stampkeeper.policy.yaml';
/** Suffixes the state layer appends to `tablePrefix` may be up to this long. */
export const MAX_TABLE_SUFFIX_LENGTH = 20;
/** The Functions host creates `<queue>-poison` next to every queue it triggers on. */
const POISON_SUFFIX = '-poison';

/** The well-known Azurite account (public, documented development credentials). */
export const AZURITE_CONNECTION_STRING =
  'DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;' +
  'AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;' +
  'BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;' +
  'QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1;' +
  'TableEndpoint=http://127.0.0.1:10002/devstoreaccount1;';

/** The default policy path resolved against the app root (the folder holding host.json). */
export function defaultPolicyPath(appRoot: string = process.cwd()): string {
  return resolve(appRoot, DEFAULT_POLICY_PATH);
}

/**
 * The policy file the app loads: `STAMPKEEPER_POLICY_PATH` (relative paths resolve against the app
 * root) or the bundled default.
 */
export function policyPathFrom(env: NodeJS.ProcessEnv = process.env, appRoot?: string): string {
  const root = appRootFrom(env, appRoot);
  const setting = env.STAMPKEEPER_POLICY_PATH?.trim();
  if (!setting) return defaultPolicyPath(root);
  return isAbsolute(setting) ? setting : resolve(root, setting);
}

/**
 * The app root (the folder holding host.json): the explicit one, else `AzureWebJobsScriptRoot`
 * when the host sets it (Core Tools does), else the working directory, which the Node worker sets
 * to the function app directory in Azure.
 */
export function appRootFrom(env: NodeJS.ProcessEnv = process.env, appRoot?: string): string {
  return appRoot ?? (env.AzureWebJobsScriptRoot?.trim() || process.cwd());
}

/**
 * Reads and validates every setting. Throws `ConfigurationError` listing every wrong or missing
 * setting with what is expected (all problems at once, never a value).
 */
export function loadSettings(
  env: NodeJS.ProcessEnv = process.env,
  options: LoadSettingsOptions = {},
): Settings {
  const result = validateSettings(env, options);
  if (!result.ok) throw settingsError(result.problems);
  return result.settings;
}

export type SettingsValidation = { ok: true; settings: Settings } | { ok: false; problems: string[] };

/** `loadSettings` without throwing: the settings, or every problem. */
export function validateSettings(
  env: NodeJS.ProcessEnv = process.env,
  options: LoadSettingsOptions = {},
): SettingsValidation {
  // A snapshot: later changes to the environment do not change validated settings.
  const snapshot: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined) snapshot[k] = v;
  const get = (name: string): string | undefined => {
    const v = snapshot[name]?.trim();
    return v ? v : undefined;
  };
  const problems: string[] = [];

  const storage = get('AzureWebJobsStorage');
  let storageConnectionString = '';
  let usesDevelopmentStorage = false;
  let storageIdentity: Settings['storageIdentity'];
  if (storage === undefined) {
    const identity = storageIdentityFrom(get, problems);
    if (identity) storageIdentity = identity;
    else if (identity === undefined) {
      problems.push(
        'AzureWebJobsStorage: is required (a storage account connection string, UseDevelopmentStorage=true for ' +
          'Azurite, or AzureWebJobsStorage__accountName for the app identity)',
      );
    }
  } else if (/^UseDevelopmentStorage=true;?$/i.test(storage)) {
    storageConnectionString = AZURITE_CONNECTION_STRING;
    usesDevelopmentStorage = true;
  } else if (!isStorageConnectionString(storage)) {
    problems.push(
      'AzureWebJobsStorage: must be a storage connection string (AccountName=...;AccountKey=... or ' +
        'endpoints with a SharedAccessSignature), or UseDevelopmentStorage=true',
    );
  } else {
    storageConnectionString = storage;
  }

  const policyPath = policyPathFrom(env, options.appRoot);

  const environment = get('STAMPKEEPER_ENVIRONMENT') ?? 'local';
  if (!/^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$/.test(environment)) {
    problems.push(
      'STAMPKEEPER_ENVIRONMENT: must be 1-32 lowercase letters, digits and dashes, not starting or ending with a dash (e.g. prod-weu)',
    );
  }

  const eventGridTopicEndpoint = get('STAMPKEEPER_EVENTGRID_TOPIC_ENDPOINT');
  if (eventGridTopicEndpoint !== undefined && !isHttpsUrl(eventGridTopicEndpoint)) {
    problems.push(
      'STAMPKEEPER_EVENTGRID_TOPIC_ENDPOINT: must be the https URL of an Event Grid topic ' +
        '(e.g. https://<topic>.<region>-1.eventgrid.azure.net/api/events)',
    );
  }

  const tablePrefix = get('STAMPKEEPER_TABLE_PREFIX') ?? 'stampkeeper';
  const maxPrefix = 63 - MAX_TABLE_SUFFIX_LENGTH;
  if (!new RegExp(`^[A-Za-z][A-Za-z0-9]{2,${maxPrefix - 1}}$`).test(tablePrefix)) {
    problems.push(
      `STAMPKEEPER_TABLE_PREFIX: must be 3-${maxPrefix} letters and digits starting with a letter ` +
        `(table names are the prefix plus a suffix of up to ${MAX_TABLE_SUFFIX_LENGTH} characters, 63 at most)`,
    );
  }

  const workQueueName = get('STAMPKEEPER_WORK_QUEUE') ?? 'stampkeeper-work';
  const maxQueue = 63 - POISON_SUFFIX.length;
  if (!isQueueName(workQueueName, maxQueue)) {
    problems.push(
      `STAMPKEEPER_WORK_QUEUE: must be a Storage queue name of 3-${maxQueue} characters (room for the host's ` +
        `"${POISON_SUFFIX}" queue): lowercase letters, digits and single dashes, starting and ending with a letter or digit`,
    );
  }

  const dryRun = parseBoolean(get('STAMPKEEPER_DRY_RUN'), 'STAMPKEEPER_DRY_RUN', false, problems);
  const auditRetentionDays = parsePositiveInt(
    get('STAMPKEEPER_AUDIT_RETENTION_DAYS'),
    'STAMPKEEPER_AUDIT_RETENTION_DAYS',
    400,
    36_500,
    problems,
  );
  const idempotencyTtlHours = parsePositiveInt(
    get('STAMPKEEPER_IDEMPOTENCY_TTL_HOURS'),
    'STAMPKEEPER_IDEMPOTENCY_TTL_HOURS',
    72,
    24 * 366,
    problems,
  );

  const managedIdentityClientId = get('AZURE_CLIENT_ID');
  if (
    managedIdentityClientId !== undefined &&
    !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(managedIdentityClientId)
  ) {
    problems.push(
      'AZURE_CLIENT_ID: must be the client id (a GUID) of the user-assigned managed identity, or unset',
    );
  }

  const allowedVaults: string[] = [];
  for (const entry of (get('STAMPKEEPER_ALLOWED_VAULTS') ?? '').split(/[,\s]+/).filter(Boolean)) {
    const url = keyVaultUrl(entry);
    if (url) allowedVaults.push(url);
    else {
      problems.push(
        'STAMPKEEPER_ALLOWED_VAULTS: every entry must be a vault name (3-24 letters, digits and dashes) or a ' +
          'Key Vault https URL (https://<name>.vault.azure.net), comma-separated',
      );
      break;
    }
  }

  const authEnabled = /^true$/i.test(get('WEBSITE_AUTH_ENABLED') ?? '');

  const timeout = functionTimeoutFrom(appRootFrom(env, options.appRoot));
  const extensionBundle = extensionBundleFrom(appRootFrom(env, options.appRoot));
  if ('problem' in timeout) problems.push(timeout.problem);
  const functionTimeoutMs = 'ms' in timeout ? timeout.ms : FLEX_DEFAULT_FUNCTION_TIMEOUT_MS;

  if (problems.length > 0) return { ok: false, problems };
  if (!usesDevelopmentStorage) registerSecret(storageConnectionString);

  const settings: Settings = {
    storageConnectionString,
    ...(storageIdentity === undefined ? {} : { storageIdentity }),
    usesDevelopmentStorage,
    policyPath,
    environment,
    tablePrefix,
    workQueueName,
    dryRun,
    auditRetentionDays,
    idempotencyTtlHours,
    functionTimeoutMs,
    ...(extensionBundle === undefined ? {} : { extensionBundle }),
    allowedVaults,
    authEnabled,
    ...(eventGridTopicEndpoint === undefined ? {} : { eventGridTopicEndpoint }),
    ...(managedIdentityClientId === undefined ? {} : { managedIdentityClientId }),
    settingValue: get,
    hostName: () => env.WEBSITE_HOSTNAME?.trim() || undefined,
  };
  // Printing the settings (a log line, a debugger) must not print the connection string.
  Object.defineProperty(settings, 'toJSON', {
    enumerable: false,
    value: () => ({ ...settings, storageConnectionString: '[REDACTED]' }),
  });
  Object.defineProperty(settings, Symbol.for('nodejs.util.inspect.custom'), {
    enumerable: false,
    value: () => ({ ...settings, storageConnectionString: '[REDACTED]' }),
  });
  return { ok: true, settings };
}

/**
 * Problems of the policy against the settings (empty when consistent): every notification channel
 * needs its setting (an eventGrid channel the topic endpoint, teams / webhook channels an https URL
 * in their `urlSetting`). Paths point into the policy; values are never echoed, and the channel
 * URLs are registered as secrets for redaction.
 */
export function checkPolicyAgainstSettings(policy: Policy, settings: Settings): string[] {
  const problems: string[] = [];
  policy.notifications.channels.forEach((channel, i) => {
    const at = `notifications.channels[${i}]`;
    if (channel.type === 'eventGrid') {
      if (!settings.eventGridTopicEndpoint) {
        problems.push(
          `${at} (${channel.name}): eventGrid channel needs setting STAMPKEEPER_EVENTGRID_TOPIC_ENDPOINT ` +
            '(https URL of an Event Grid topic), which is not set',
        );
      }
      return;
    }
    const value = settings.settingValue(channel.urlSetting);
    // Webhook URLs carry their credential (Teams signatures, tokens): keep them out of every log.
    registerSecret(value);
    if (value === undefined) {
      problems.push(
        `${at}.urlSetting (${channel.name}): setting ${channel.urlSetting} is not set (expected the ${channel.type} webhook https URL)`,
      );
    } else if (!isWebhookUrl(value)) {
      problems.push(
        `${at}.urlSetting (${channel.name}): setting ${channel.urlSetting} must be an https URL (http only on localhost)`,
      );
    }
  });
  policy.secrets.forEach((secret, i) => {
    if (secret.rotation.provider === 'manual') return;
    secret.rotation.consumers.forEach((consumer, j) => {
      const at = `secrets[${i}].rotation.consumers[${j}]`;
      const urlSettings: Array<[string, string | undefined]> =
        consumer.type === 'webhook'
          ? [['urlSetting', consumer.urlSetting]]
          : consumer.type === 'waitForReload'
            ? [['healthUrlSetting', consumer.healthUrlSetting]]
            : [];
      for (const [field, name] of urlSettings) {
        if (name === undefined) continue;
        const value = settings.settingValue(name);
        registerSecret(value);
        if (value === undefined) {
          problems.push(`${at}.${field}: setting ${name} is not set (expected an https URL)`);
        } else if (!isWebhookUrl(value)) {
          problems.push(`${at}.${field}: setting ${name} must be an https URL (http only on localhost)`);
        }
      }
    });
  });
  const connections = new Map<string, number>();
  policy.deadLetters.forEach((entity, i) => {
    if (!connections.has(entity.connection)) connections.set(entity.connection, i);
  });
  for (const [connection, i] of connections) {
    const at = `deadLetters[${i}].connection (${policy.deadLetters[i]!.name})`;
    const host = settings.settingValue(`${connection}__fullyQualifiedNamespace`);
    const value = settings.settingValue(connection);
    // A connection string carries a key: keep it out of every log.
    registerSecret(value);
    if (host === undefined && value === undefined) {
      problems.push(
        `${at}: setting ${connection}__fullyQualifiedNamespace (the namespace's host name, for the app identity) or ${connection} (a connection string) is not set`,
      );
    } else if (serviceBusConnectionOf(settings, connection) === undefined) {
      problems.push(
        host !== undefined
          ? `${at}: setting ${connection}__fullyQualifiedNamespace must be the namespace's host name (<namespace>.servicebus.windows.net)`
          : `${at}: setting ${connection} must be a Service Bus connection string (Endpoint=sb://...)`,
      );
    }
  }
  if (policy.deadLetters.length > 0 && settings.storageIdentity && !settings.storageIdentity.blobServiceUrl) {
    problems.push(
      'deadLetters: the archive keeps large bodies in Blob storage: set AzureWebJobsStorage__blobServiceUri (or AzureWebJobsStorage__accountName)',
    );
  }
  return problems;
}

function settingsError(problems: string[]): ConfigurationError {
  return new ConfigurationError(
    `Invalid settings (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n${problems
      .map((p) => `  - ${p}`)
      .join('\n')}`,
    problems,
    { metadata: { settings: problems.map((p) => p.slice(0, p.indexOf(':'))) } },
  );
}

function parseBoolean(
  value: string | undefined,
  name: string,
  fallback: boolean,
  problems: string[],
): boolean {
  if (value === undefined) return fallback;
  const v = value.toLowerCase();
  if (v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0') return false;
  problems.push(`${name}: must be true, false, 1 or 0`);
  return fallback;
}

function parsePositiveInt(
  value: string | undefined,
  name: string,
  fallback: number,
  max: number,
  problems: string[],
): number {
  if (value === undefined) return fallback;
  const n = /^\d+$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < 1 || n > max) {
    problems.push(`${name}: must be a whole number from 1 to ${max} (default ${fallback})`);
    return fallback;
  }
  return n;
}

function isHttpsUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return url.protocol === 'https:' && url.hostname !== '' && !url.username && !url.password;
  } catch {
    return false;
  }
}

function isWebhookUrl(value: string): boolean {
  try {
    const url = new URL(value);
    if (url.protocol === 'https:') return url.hostname !== '';
    // Plain http only for receivers on this machine (tests, the local host).
    return isLoopbackHttpUrl(value);
  } catch {
    return false;
  }
}

function isQueueName(name: string, max: number): boolean {
  return name.length >= 3 && name.length <= max && /^[a-z0-9](?:[a-z0-9]|-(?!-))*[a-z0-9]$/.test(name);
}

function isStorageConnectionString(value: string): boolean {
  const pairs = value.split(';').filter((p) => p.trim() !== '');
  const fields = new Map<string, string>();
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) return false;
    fields.set(pair.slice(0, eq).trim().toLowerCase(), pair.slice(eq + 1).trim());
  }
  const has = (k: string) => Boolean(fields.get(k));
  const hasEndpoint = ['blobendpoint', 'queueendpoint', 'tableendpoint'].some(has);
  if (has('accountname') && has('accountkey')) return true;
  return has('sharedaccesssignature') && (hasEndpoint || has('accountname'));
}

const STORAGE_ACCOUNT_NAME = /^[a-z0-9]{3,24}$/;

/**
 * Identity-based `AzureWebJobsStorage` (the host's `__accountName` / `__*ServiceUri` forms): the
 * service URLs, `undefined` when none of those settings is given, `null` when they are wrong (the
 * problems say why).
 */
function storageIdentityFrom(
  get: (name: string) => string | undefined,
  problems: string[],
): Settings['storageIdentity'] | null | undefined {
  const account = get('AzureWebJobsStorage__accountName');
  const tableUri = get('AzureWebJobsStorage__tableServiceUri');
  const queueUri = get('AzureWebJobsStorage__queueServiceUri');
  if (account === undefined && tableUri === undefined && queueUri === undefined) return undefined;
  if (account !== undefined) {
    if (!STORAGE_ACCOUNT_NAME.test(account)) {
      problems.push(
        'AzureWebJobsStorage__accountName: must be a storage account name (3-24 lowercase letters and digits)',
      );
      return null;
    }
    return {
      tableServiceUrl: tableUri ?? `https://${account}.table.core.windows.net`,
      queueServiceUrl: queueUri ?? `https://${account}.queue.core.windows.net`,
      blobServiceUrl:
        get('AzureWebJobsStorage__blobServiceUri') ?? `https://${account}.blob.core.windows.net`,
    };
  }
  let ok = true;
  for (const [name, value] of [
    ['AzureWebJobsStorage__tableServiceUri', tableUri],
    ['AzureWebJobsStorage__queueServiceUri', queueUri],
  ] as const) {
    if (value === undefined || !isHttpsUrl(value)) {
      problems.push(
        `${name}: must be the https URL of the storage account's service (or set AzureWebJobsStorage__accountName)`,
      );
      ok = false;
    }
  }
  const blobUri = get('AzureWebJobsStorage__blobServiceUri');
  if (blobUri !== undefined && !isHttpsUrl(blobUri)) {
    problems.push(
      "AzureWebJobsStorage__blobServiceUri: must be the https URL of the storage account's blob service",
    );
    ok = false;
  }
  return ok
    ? {
        tableServiceUrl: tableUri!,
        queueServiceUrl: queueUri!,
        ...(blobUri === undefined ? {} : { blobServiceUrl: blobUri }),
      }
    : null;
}

/** How the app reaches a Service Bus namespace: with its identity (Azure) or a connection string (locally). */
export type ServiceBusConnectionSetting = { fullyQualifiedNamespace: string } | { connectionString: string };

const SERVICE_BUS_HOST =
  /^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$/;

/**
 * The Service Bus connection a trigger's `connection` names, read as the Functions host reads it:
 * `<connection>__fullyQualifiedNamespace` (identity-based: the app's managed identity), else
 * `<connection>` holding a connection string (the sandbox broker's locally). `undefined` when
 * neither is set or the value is malformed (`checkPolicyAgainstSettings` says which).
 */
export function serviceBusConnectionOf(
  settings: Pick<Settings, 'settingValue'>,
  connection: string,
): ServiceBusConnectionSetting | undefined {
  const host = settings.settingValue(`${connection}__fullyQualifiedNamespace`);
  if (host !== undefined) return SERVICE_BUS_HOST.test(host) ? { fullyQualifiedNamespace: host } : undefined;
  const connectionString = settings.settingValue(connection);
  if (connectionString === undefined || !/(^|;)\s*Endpoint\s*=\s*sb:\/\/[^;]+/i.test(connectionString))
    return undefined;
  return { connectionString };
}

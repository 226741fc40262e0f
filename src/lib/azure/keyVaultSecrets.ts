import type { TokenCredential } from '@azure/core-auth';
import type {
  HttpClient,
  PipelinePolicy,
  PipelineRequest,
  PipelineResponse,
  SendRequest,
} from '@azure/core-rest-pipeline';
import type { SecretProperties as SdkSecretProperties } from '@azure/keyvault-secrets';
import { ConfigurationError, NotFoundError, ValidationError } from '../core/errors';
import { registerSecret } from '../core/redact';
import type {
  SecretProperties,
  SecretVault,
  SecretWithValue,
  SetSecretOptions,
  UpdateSecretOptions,
  VaultCallOptions,
} from '../ports/secrets';
import { currentVersionOf } from '../rotation/currentVersion';
import { fromAzureError } from './errors';

/** The SDK, loaded on first use (the types of `import()`, ESM, differ from those of `import type`). */
const loadSdk = () => import('@azure/keyvault-secrets');
type SecretClient = InstanceType<Awaited<ReturnType<typeof loadSdk>>['SecretClient']>;

/**
 * `SecretVault` over `@azure/keyvault-secrets`. One `SecretClient` per vault, built on first use;
 * the SDK itself is loaded then too (`import()`), not when the app starts (cold start: see
 * `src/lib/app/deps.ts`). Every value read or written is registered with the redactor so that it
 * can never reach a log.
 */
export class KeyVaultSecretVault implements SecretVault {
  private readonly clients = new Map<string, Promise<SecretClient>>();

  constructor(
    private readonly credential: TokenCredential,
    private readonly options: { httpClient?: HttpClient } = {},
  ) {}

  /**
   * Properties of the latest version (or `version`), read from the version listing so that no
   * value is fetched. Needs `secrets/list` (RBAC: Key Vault Reader is enough). Transient failures
   * throw a retryable `TransientError`.
   */
  async getSecretProperties(
    vaultUrl: string,
    name: string,
    options: VaultCallOptions & { version?: string } = {},
  ): Promise<SecretProperties | undefined> {
    const versions: SecretProperties[] = [];
    try {
      for await (const item of this.listSecretVersions(vaultUrl, name, options)) {
        if (options.version) {
          if (item.version === options.version) return item;
          continue;
        }
        versions.push(item);
      }
    } catch (error) {
      if (error instanceof NotFoundError) return undefined;
      throw error;
    }
    // Listed in version-id order, `created` to the second: of versions created in the same second,
    // the one updated last is the best guess (callers that must not guess use `currentVersionOf`).
    const { candidates } = currentVersionOf(versions);
    return candidates.reduce<SecretProperties | undefined>(
      (best, v) => (!best || (v.updatedOn?.getTime() ?? 0) >= (best.updatedOn?.getTime() ?? 0) ? v : best),
      undefined,
    );
  }

  /** The value of the latest (or given) version. Needs `secrets/get` (Key Vault Secrets User). */
  async getSecret(
    vaultUrl: string,
    name: string,
    options: VaultCallOptions & { version?: string } = {},
  ): Promise<SecretWithValue> {
    try {
      const secret = await (await this.client(vaultUrl)).getSecret(name, {
        version: options.version,
        abortSignal: options.abortSignal,
      });
      if (secret.value === undefined) throw new NotFoundError(`secret ${name} has no value`);
      registerSecret(secret.value);
      return { properties: toProperties(secret.properties), value: secret.value };
    } catch (error) {
      throw fromAzureError(error, `reading secret ${name} in ${hostOf(vaultUrl)}`, { target: name });
    }
  }

  /** Properties of every secret in the vault (no values). Needs `secrets/list`. */
  async *listSecrets(vaultUrl: string, options: VaultCallOptions = {}): AsyncIterable<SecretProperties> {
    try {
      for await (const item of (await this.client(vaultUrl)).listPropertiesOfSecrets({
        abortSignal: options.abortSignal,
      })) {
        yield toProperties(item);
      }
    } catch (error) {
      throw fromAzureError(error, `listing secrets in ${hostOf(vaultUrl)}`);
    }
  }

  /** Properties of every version of a secret (no values). Needs `secrets/list`. */
  async *listSecretVersions(
    vaultUrl: string,
    name: string,
    options: VaultCallOptions = {},
  ): AsyncIterable<SecretProperties> {
    try {
      for await (const item of (await this.client(vaultUrl)).listPropertiesOfSecretVersions(name, {
        abortSignal: options.abortSignal,
      })) {
        yield toProperties(item);
      }
    } catch (error) {
      throw fromAzureError(error, `listing versions of secret ${name} in ${hostOf(vaultUrl)}`, {
        target: name,
      });
    }
  }

  /** Publishes a new version. Needs `secrets/set` (Key Vault Secrets Officer). Not idempotent by itself: callers check first. */
  async setSecret(
    vaultUrl: string,
    name: string,
    value: string,
    options: SetSecretOptions = {},
  ): Promise<SecretProperties> {
    registerSecret(value);
    checkDates(name, options);
    try {
      const secret = await (await this.client(vaultUrl)).setSecret(name, value, {
        enabled: options.enabled,
        notBefore: options.notBefore,
        expiresOn: options.expiresOn,
        contentType: options.contentType,
        tags: options.tags,
        abortSignal: options.abortSignal,
      });
      return toProperties(secret.properties);
    } catch (error) {
      throw fromAzureError(error, `setting secret ${name} in ${hostOf(vaultUrl)}`, { target: name });
    }
  }

  /** Updates attributes / tags of one version. Needs `secrets/set`. Idempotent. */
  async updateSecretProperties(
    vaultUrl: string,
    name: string,
    version: string,
    options: UpdateSecretOptions,
  ): Promise<SecretProperties> {
    checkDates(name, options);
    try {
      const props = await (await this.client(vaultUrl)).updateSecretProperties(name, version, {
        enabled: options.enabled,
        notBefore: options.notBefore ?? undefined,
        expiresOn: options.expiresOn ?? undefined,
        contentType: options.contentType,
        tags: options.tags,
        abortSignal: options.abortSignal,
      });
      return toProperties(props);
    } catch (error) {
      throw fromAzureError(error, `updating secret ${name} in ${hostOf(vaultUrl)}`, { target: name });
    }
  }

  private client(vaultUrl: string): Promise<SecretClient> {
    const key = vaultUrl.replace(/\/+$/, '').toLowerCase();
    let client = this.clients.get(key);
    if (!client) {
      client = loadSdk().then(
        ({ SecretClient }) =>
          new SecretClient(key, this.credential, {
            httpClient: this.options.httpClient,
            // The SDK's retry policy waits the `Retry-After` of a 429 (its throttling strategy, before
            // the exponential one) and retries at most twice; throttleBackoffPolicy covers the 429s
            // that name no delay, which the SDK would not retry at all.
            retryOptions: { maxRetries: THROTTLE_RETRIES },
            additionalPolicies: [
              { policy: epochFixPolicy, position: 'perCall' },
              { policy: throttleBackoffPolicy, position: 'perCall' },
              { policy: unknownVaultPolicy, position: 'perRetry' },
            ],
          }),
      );
      // A failed load is tried again on the next call.
      client.catch(() => this.clients.delete(key));
      this.clients.set(key, client);
    }
    return client;
  }
}

/**
 * `@azure/keyvault-secrets` (4.11, 4.12) serializes `nbf` / `exp` as `date.getTime() / 1e3 | 0`: a
 * 32-bit conversion that turns every date after 2038-01-19T03:14:07Z into a negative number (Key
 * Vault would store a date in 1901). Negative epoch seconds are never meant, so this policy restores
 * the value the caller gave (it wrapped by exactly 2^32) in the request body the SDK built.
 */
const epochFixPolicy: PipelinePolicy = {
  name: 'stampkeeperKeyVaultEpochFix',
  sendRequest(request: PipelineRequest, next: SendRequest) {
    if (typeof request.body === 'string' && (request.method === 'PUT' || request.method === 'PATCH')) {
      try {
        const body = JSON.parse(request.body) as { attributes?: Record<string, unknown> };
        const attributes = body.attributes;
        let changed = false;
        for (const field of ['nbf', 'exp'] as const) {
          const v = attributes?.[field];
          if (attributes && typeof v === 'number' && v < 0) {
            attributes[field] = v + 2 ** 32;
            changed = true;
          }
        }
        if (changed) request.body = JSON.stringify(body);
      } catch {
        // Not JSON: nothing of ours to fix.
      }
    }
    return next(request);
  },
};

/** Retries of one call that Key Vault throttled: the SDK's for a 429 with `Retry-After`, ours without. */
const THROTTLE_RETRIES = 2;
/** Key Vault's throttling guidance: on a 429, wait 1 s, then 2 s, 4 s... (overview-throttling). */
const THROTTLE_BACKOFF_MS = 1_000;

/**
 * Key Vault answers an over-limit request with 429 `Throttled` and, as seen in real answers, no
 * `Retry-After`. The SDK's default retry policy retries a 429 only when a header names a delay
 * (`Retry-After`, `retry-after-ms`, `x-ms-retry-after-ms`: its throttling strategy); its exponential
 * strategy leaves 429s alone, so such a 429 would fail the call at once and the caller's retry would
 * come back just as fast. This policy (outside the SDK's retry loop) waits as Key Vault's guidance
 * prescribes, 1 s then 2 s, at most `THROTTLE_RETRIES` times per call, then passes the 429 on (a
 * retryable `TransientError`). A 429 that names a delay was already retried by the SDK, which
 * waited that delay: it is passed on as is. So one call sends at most three requests, never more,
 * however long the vault stays throttled, and every wait follows the abort signal.
 */
const throttleBackoffPolicy: PipelinePolicy = {
  name: 'stampkeeperKeyVaultThrottleBackoff',
  async sendRequest(request: PipelineRequest, next: SendRequest) {
    let attempt = 0;
    for (;;) {
      let response: PipelineResponse;
      try {
        response = await next(request);
      } catch (error) {
        const failed = (error as { response?: PipelineResponse }).response;
        if (!failed || !throttledWithoutDelay(failed) || attempt >= THROTTLE_RETRIES) throw error;
        await sleep(THROTTLE_BACKOFF_MS * 2 ** attempt++, request.abortSignal);
        continue;
      }
      if (!throttledWithoutDelay(response) || attempt >= THROTTLE_RETRIES) return response;
      await sleep(THROTTLE_BACKOFF_MS * 2 ** attempt++, request.abortSignal);
    }
  },
};

function throttledWithoutDelay(response: PipelineResponse): boolean {
  return (
    response.status === 429 &&
    !['retry-after', 'retry-after-ms', 'x-ms-retry-after-ms'].some((h) => response.headers.has(h))
  );
}

function sleep(ms: number, abortSignal: PipelineRequest['abortSignal']): Promise<void> {
  return new Promise((resolve, reject) => {
    if (abortSignal?.aborted) {
      reject(abortError());
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortError());
    };
    const timer = setTimeout(() => {
      abortSignal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    abortSignal?.addEventListener('abort', onAbort, { once: true });
  });
}

function abortError(): Error {
  const error = new Error('The operation was aborted.');
  error.name = 'AbortError';
  return error;
}

/**
 * A vault host that does not resolve (`getaddrinfo ENOTFOUND <vault>.vault.azure.net`, no answer at
 * all) means there is no such vault: a configuration problem (a wrong name in the policy or the
 * settings, a deleted vault), not a network blip. Turned into a non-retryable `ConfigurationError`
 * inside the retry loop, so that neither the SDK's retries nor the host's redeliveries go on for it.
 * (`EAI_AGAIN`, the resolver's own transient failure, stays retryable.)
 */
const unknownVaultPolicy: PipelinePolicy = {
  name: 'stampkeeperUnknownVault',
  async sendRequest(request: PipelineRequest, next: SendRequest) {
    try {
      return await next(request);
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      const status = (error as { statusCode?: unknown }).statusCode;
      if (code === 'ENOTFOUND' && status === undefined) {
        const host = hostOf(request.url);
        throw new ConfigurationError(
          `Key Vault ${host} does not resolve: no such vault (check the vault name in the policy or STAMPKEEPER_ALLOWED_VAULTS)`,
          [],
          { cause: error, metadata: { vault: host } },
        );
      }
      throw error;
    }
  },
};

/** Dates the SDK's 32-bit conversion cannot carry even once unwrapped (from 2106-02-07) are refused. */
const MAX_EPOCH_MS = 2 ** 32 * 1000;

function checkDates(name: string, options: { notBefore?: Date | null; expiresOn?: Date | null }): void {
  const problems: string[] = [];
  for (const [field, date] of [
    ['notBefore', options.notBefore],
    ['expiresOn', options.expiresOn],
  ] as const) {
    if (!date) continue;
    const ms = date.getTime();
    if (Number.isNaN(ms)) problems.push(`${field}: not a valid date`);
    else if (ms < 0 || ms >= MAX_EPOCH_MS)
      problems.push(
        `${field}: ${date.toISOString()} is outside 1970-01-01..2106-02-07, which Key Vault dates can hold`,
      );
  }
  if (problems.length > 0)
    throw new ValidationError(`secret ${name}: ${problems.join('; ')}`, problems, {
      metadata: { target: name },
    });
}

function toProperties(p: SdkSecretProperties): SecretProperties {
  return {
    ...(p.managed === undefined ? {} : { managed: p.managed }),
    vaultUrl: p.vaultUrl.replace(/\/+$/, ''),
    name: p.name,
    version: p.version,
    id: p.id,
    enabled: p.enabled,
    notBefore: p.notBefore,
    expiresOn: p.expiresOn,
    createdOn: p.createdOn,
    updatedOn: p.updatedOn,
    contentType: p.contentType,
    tags: { ...(p.tags ?? {}) },
  };
}

function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}

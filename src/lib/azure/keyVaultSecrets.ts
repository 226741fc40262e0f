import type { TokenCredential } from '@azure/core-auth';
import type { HttpClient } from '@azure/core-rest-pipeline';
import { type SecretProperties as SdkSecretProperties, SecretClient } from '@azure/keyvault-secrets';
import { NotFoundError } from '../core/errors';
import { registerSecret } from '../core/redact';
import type {
  SecretProperties,
  SecretVault,
  SecretWithValue,
  SetSecretOptions,
  UpdateSecretOptions,
  VaultCallOptions,
} from '../ports/secrets';
import { fromAzureError } from './errors';

/**
 * `SecretVault` over `@azure/keyvault-secrets`. One `SecretClient` per vault, built lazily.
 * Every value read or written is registered with the redactor so that it can never reach a log.
 */
export class KeyVaultSecretVault implements SecretVault {
  private readonly clients = new Map<string, SecretClient>();

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
    let latest: SecretProperties | undefined;
    try {
      for await (const item of this.listSecretVersions(vaultUrl, name, options)) {
        if (options.version) {
          if (item.version === options.version) return item;
          continue;
        }
        if (!latest || (item.createdOn?.getTime() ?? 0) > (latest.createdOn?.getTime() ?? 0)) latest = item;
      }
    } catch (error) {
      if (error instanceof NotFoundError) return undefined;
      throw error;
    }
    return latest;
  }

  /** The value of the latest (or given) version. Needs `secrets/get` (Key Vault Secrets User). */
  async getSecret(
    vaultUrl: string,
    name: string,
    options: VaultCallOptions & { version?: string } = {},
  ): Promise<SecretWithValue> {
    try {
      const secret = await this.client(vaultUrl).getSecret(name, {
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
      for await (const item of this.client(vaultUrl).listPropertiesOfSecrets({
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
      for await (const item of this.client(vaultUrl).listPropertiesOfSecretVersions(name, {
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
    try {
      const secret = await this.client(vaultUrl).setSecret(name, value, {
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
    try {
      const props = await this.client(vaultUrl).updateSecretProperties(name, version, {
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

  private client(vaultUrl: string): SecretClient {
    const key = vaultUrl.replace(/\/+$/, '').toLowerCase();
    let client = this.clients.get(key);
    if (!client) {
      client = new SecretClient(key, this.credential, {
        httpClient: this.options.httpClient,
        retryOptions: { maxRetries: 2 },
      });
      this.clients.set(key, client);
    }
    return client;
  }
}

function toProperties(p: SdkSecretProperties): SecretProperties {
  return {
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

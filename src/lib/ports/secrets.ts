/** Key Vault secrets, as a port. Values only travel through `getSecret` / `setSecret`. */
export interface SecretProperties {
  /** `https://{vault}.vault.azure.net` without a trailing slash. */
  vaultUrl: string;
  name: string;
  version?: string;
  /** Full secret identifier (`{vaultUrl}/secrets/{name}/{version}`). */
  id?: string;
  enabled?: boolean;
  notBefore?: Date;
  expiresOn?: Date;
  createdOn?: Date;
  updatedOn?: Date;
  contentType?: string;
  tags: Record<string, string>;
  /**
   * The secret half of a Key Vault certificate (`managed: true` in the listing): renewed by its
   * certificate's policy, never rotated as a secret.
   */
  managed?: boolean;
}

export interface SecretWithValue {
  properties: SecretProperties;
  /** The secret value. Never log it, never put it in an audit record or an error. */
  value: string;
}

export interface VaultCallOptions {
  abortSignal?: AbortSignal;
}

export interface SetSecretOptions extends VaultCallOptions {
  enabled?: boolean;
  notBefore?: Date;
  expiresOn?: Date;
  contentType?: string;
  tags?: Record<string, string>;
}

export interface UpdateSecretOptions extends VaultCallOptions {
  enabled?: boolean;
  notBefore?: Date | null;
  expiresOn?: Date | null;
  contentType?: string;
  tags?: Record<string, string>;
}

export interface SecretVault {
  /** Properties of the latest (or the given) version; `undefined` when the secret does not exist. */
  getSecretProperties(
    vaultUrl: string,
    name: string,
    options?: VaultCallOptions & { version?: string },
  ): Promise<SecretProperties | undefined>;
  /** The value of the latest (or the given) version. Throws `NotFoundError` when absent. */
  getSecret(
    vaultUrl: string,
    name: string,
    options?: VaultCallOptions & { version?: string },
  ): Promise<SecretWithValue>;
  listSecrets(vaultUrl: string, options?: VaultCallOptions): AsyncIterable<SecretProperties>;
  listSecretVersions(
    vaultUrl: string,
    name: string,
    options?: VaultCallOptions,
  ): AsyncIterable<SecretProperties>;
  setSecret(
    vaultUrl: string,
    name: string,
    value: string,
    options?: SetSecretOptions,
  ): Promise<SecretProperties>;
  updateSecretProperties(
    vaultUrl: string,
    name: string,
    version: string,
    options: UpdateSecretOptions,
  ): Promise<SecretProperties>;
}

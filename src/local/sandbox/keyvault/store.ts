/**
 * Key Vault secrets, the state and the rules: versions, attributes, tags, and the events Key Vault
 * raises through Event Grid (`SecretNewVersionCreated` on every new version; `SecretNearExpiry` 30
 * days before and `SecretExpired` at the `exp` of the current version, once per version).
 *
 * Secret values live only here and leave only through `bundle(..., { withValue: true })`, which the
 * REST GET / PUT responses use. Every inspection view is built from `describe()`, which has no value.
 *
 * Version ids derive from the scenario's seed, the secret and the version's ordinal (`ids.ts`), so a
 * sandbox rebuilt from the same scenario, replaying the same actions, has the same versions.
 */
import type { SandboxClock, WorldTicker } from '../clock';
import type { EventBus } from '../eventgrid/delivery';
import { secretVersionId } from '../ids';

export const NEAR_EXPIRY_MS = 30 * 24 * 60 * 60 * 1000;
export const RECOVERY_LEVEL = 'Recoverable+Purgeable';
export const RECOVERABLE_DAYS = 90;
export const MAX_TAGS = 15;
export const MAX_VALUE_BYTES = 25 * 1024;

export interface SecretVersionState {
  version: string;
  value: string;
  contentType: string | undefined;
  tags: Record<string, string>;
  enabled: boolean;
  /** Epoch seconds, as Key Vault stores them. */
  nbf: number | undefined;
  exp: number | undefined;
  created: number;
  updated: number;
  nearExpiryRaised: boolean;
  expiredRaised: boolean;
}

interface SecretState {
  name: string;
  /** In creation order: the last one is the current version. Listings sort by version id instead. */
  versions: SecretVersionState[];
  /** True for the secret half of a certificate: Key Vault manages its lifetime. */
  managed: boolean;
}

export interface VaultState {
  name: string;
  resourceGroup: string;
  secrets: Map<string, SecretState>;
}

export interface SecretAttributesInput {
  enabled?: boolean;
  nbf?: number;
  exp?: number;
}

export interface SetSecretInput {
  value: string;
  contentType?: string;
  tags?: Record<string, string>;
  attributes?: SecretAttributesInput;
}

export interface UpdateSecretInput {
  contentType?: string;
  tags?: Record<string, string>;
  attributes?: SecretAttributesInput;
}

/** A failure Key Vault would answer with; the REST layer maps it to the published error body. */
export class KeyVaultFault extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly innerCode?: string,
  ) {
    super(message);
  }
}

/**
 * Key Vault's answer to a write on the secret half of a certificate (403, innererror
 * `SecretManagedByKeyVault`). The message for "set" and "delete" is the one Key Vault sends
 * (hashicorp/terraform-provider-azurerm#5659; azure-sdk-for-js keyvault-secrets recordings);
 * "update" follows the same pattern (not seen in a recording).
 */
export function managedSecretFault(operation: 'set' | 'update'): KeyVaultFault {
  return new KeyVaultFault(
    403,
    'Forbidden',
    `Operation "${operation}" is not allowed as this object's lifetime is managed by Key Vault.`,
    'SecretManagedByKeyVault',
  );
}

/**
 * The order Key Vault lists in: by key, upper-cased (`secret/NAME`, `secret/NAME/VERSION`, as the
 * markers of its `$skiptoken`s show), so secrets by name and versions by version id, whatever
 * the order they were created in.
 */
export function listingKey(name: string, version?: string): string {
  return (version === undefined ? `secret/${name}` : `secret/${name}/${version}`).toUpperCase();
}

const byKey = <T extends { key: string }>(a: T, b: T) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);

const toSeconds = (ms: number) => Math.floor(ms / 1000);
const iso = (seconds: number | undefined) =>
  seconds === undefined ? undefined : new Date(seconds * 1000).toISOString();

export class KeyVaultStore implements WorldTicker {
  private readonly vaults = new Map<string, VaultState>();

  constructor(
    private readonly clock: SandboxClock,
    private readonly bus: EventBus,
    private readonly subscriptionId: string,
    /** The scenario's seed: version ids derive from it. */
    private readonly seed: string,
  ) {}

  addVault(name: string, resourceGroup: string): VaultState {
    const vault: VaultState = { name, resourceGroup, secrets: new Map() };
    this.vaults.set(name.toLowerCase(), vault);
    return vault;
  }

  vault(name: string): VaultState | undefined {
    return this.vaults.get(name.toLowerCase());
  }

  vaultNames(): string[] {
    return [...this.vaults.values()].map((v) => v.name);
  }

  static vaultUrl(vault: string): string {
    return `https://${vault}.vault.azure.net`;
  }

  topicOf(vault: VaultState): string {
    return `/subscriptions/${this.subscriptionId}/resourceGroups/${vault.resourceGroup}/providers/Microsoft.KeyVault/vaults/${vault.name}`;
  }

  /**
   * Creates a version that exists before the story begins: no `SecretNewVersionCreated`.
   * `certificate`: the secret is the secret half of a certificate (managed by Key Vault).
   */
  seedSecret(
    vaultName: string,
    name: string,
    input: SetSecretInput,
    opts: { certificate?: boolean } = {},
  ): SecretVersionState {
    return this.createVersion(vaultName, name, input, {
      raise: false,
      certificate: opts.certificate ?? false,
    });
  }

  /**
   * Creates a new version (the new current one) and raises `SecretNewVersionCreated`, as a PUT does.
   * Refused for the secret half of a certificate (403 `SecretManagedByKeyVault`).
   */
  setSecret(vaultName: string, name: string, input: SetSecretInput): SecretVersionState {
    if (this.isManaged(vaultName, name)) throw managedSecretFault('set');
    return this.createVersion(vaultName, name, input, { raise: true, certificate: false });
  }

  /** True when `name` is the secret half of a certificate. */
  isManaged(vaultName: string, name: string): boolean {
    return this.requireVault(vaultName).secrets.get(name.toLowerCase())?.managed ?? false;
  }

  private createVersion(
    vaultName: string,
    name: string,
    input: SetSecretInput,
    opts: { raise: boolean; certificate: boolean },
  ): SecretVersionState {
    const vault = this.requireVault(vaultName);
    if (Buffer.byteLength(input.value, 'utf8') > MAX_VALUE_BYTES) {
      throw new KeyVaultFault(
        400,
        'BadParameter',
        `The secret value exceeds the maximum size of ${MAX_VALUE_BYTES} bytes.`,
      );
    }
    checkTags(input.tags);
    let secret = vault.secrets.get(name.toLowerCase());
    if (!secret) {
      secret = { name, versions: [], managed: opts.certificate };
      vault.secrets.set(name.toLowerCase(), secret);
    }
    // Key Vault keeps one-second resolution: two versions made in the same second have equal `created`.
    const now = toSeconds(this.clock.now().getTime());
    const state: SecretVersionState = {
      version: secretVersionId(this.seed, vault.name, secret.name, secret.versions.length),
      value: input.value,
      contentType: input.contentType,
      tags: { ...(input.tags ?? {}) },
      enabled: input.attributes?.enabled ?? true,
      nbf: input.attributes?.nbf,
      exp: input.attributes?.exp,
      created: now,
      updated: now,
      nearExpiryRaised: false,
      expiredRaised: false,
    };
    secret.versions.push(state);
    if (opts.raise) this.raise(vault, secret, state, 'Microsoft.KeyVault.SecretNewVersionCreated');
    return state;
  }

  /** The version named, or the current one when `version` is empty. Throws SecretNotFound. */
  getVersion(
    vaultName: string,
    name: string,
    version: string | undefined,
  ): { secret: SecretState; state: SecretVersionState } {
    const vault = this.requireVault(vaultName);
    const secret = vault.secrets.get(name.toLowerCase());
    const state = version
      ? secret?.versions.find((v) => v.version === version.toLowerCase())
      : secret?.versions[secret.versions.length - 1];
    if (!secret || !state) {
      throw new KeyVaultFault(
        404,
        'SecretNotFound',
        `A secret with (name/id) ${version ? `${name}/${version}` : name} was not found in this key vault. If you recently deleted this secret you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182`,
      );
    }
    return { secret, state };
  }

  /**
   * Reads a version for a GET. Disabled versions are refused (403 SecretDisabled); expired and
   * not-yet-valid versions are served, as Key Vault does for secrets (nbf/exp are informational).
   */
  readVersion(vaultName: string, name: string, version: string | undefined) {
    const found = this.getVersion(vaultName, name, version);
    if (!found.state.enabled) {
      throw new KeyVaultFault(
        403,
        'Forbidden',
        'Operation get is not allowed on a disabled secret.',
        'SecretDisabled',
      );
    }
    return found;
  }

  updateVersion(vaultName: string, name: string, version: string | undefined, input: UpdateSecretInput) {
    const found = this.getVersion(vaultName, name, version);
    if (found.secret.managed) throw managedSecretFault('update');
    if (input.tags !== undefined) checkTags(input.tags);
    const { state } = found;
    if (input.contentType !== undefined) state.contentType = input.contentType;
    if (input.tags !== undefined) state.tags = { ...input.tags };
    const attrs = input.attributes ?? {};
    if (attrs.enabled !== undefined) state.enabled = attrs.enabled;
    if (attrs.nbf !== undefined) state.nbf = attrs.nbf;
    if (attrs.exp !== undefined && attrs.exp !== state.exp) {
      state.exp = attrs.exp;
      // A new expiry is a new deadline: its warnings are owed again.
      state.nearExpiryRaised = false;
      state.expiredRaised = false;
    }
    state.updated = toSeconds(this.clock.now().getTime());
    return found;
  }

  /** Secrets of a vault (current version's properties), in Key Vault's listing order (`listingKey`). */
  listSecrets(vaultName: string): Array<{ key: string; secret: SecretState; state: SecretVersionState }> {
    const vault = this.requireVault(vaultName);
    return [...vault.secrets.values()]
      .map((secret) => ({
        key: listingKey(secret.name),
        secret,
        state: secret.versions[secret.versions.length - 1]!,
      }))
      .sort(byKey);
  }

  /**
   * Versions of a secret in Key Vault's listing order: by version id, not by creation (see
   * `listingKey`). A secret that does not exist has no versions: Key Vault answers 200 with an empty
   * list (azure-sdk-for-js recording `can list secret versions (non existing)`), not 404.
   */
  listVersions(
    vaultName: string,
    name: string,
  ): Array<{ key: string; secret: SecretState; state: SecretVersionState }> {
    const secret = this.requireVault(vaultName).secrets.get(name.toLowerCase());
    if (!secret) return [];
    return secret.versions
      .map((state) => ({ key: listingKey(secret.name, state.version), secret, state }))
      .sort(byKey);
  }

  /**
   * The REST body of a version: a SecretBundle, or with `item` a SecretItem of a listing (no `kid`).
   * `withValue` only for the GET/PUT responses; `versioned: false` for the unversioned ids of `GET /secrets`.
   */
  bundle(
    vaultName: string,
    secret: SecretState,
    state: SecretVersionState,
    opts: { withValue: boolean; versioned?: boolean; item?: boolean },
  ) {
    const vault = this.requireVault(vaultName);
    const base = `${KeyVaultStore.vaultUrl(vault.name)}/secrets/${secret.name}`;
    const body: Record<string, unknown> = {};
    if (opts.withValue) body.value = state.value;
    body.id = opts.versioned === false ? base : `${base}/${state.version}`;
    if (state.contentType !== undefined) body.contentType = state.contentType;
    // A certificate's secret says so (`managed`, in list items too); a bundle (GET / PUT / PATCH, not a
    // list item) also names the certificate's key, which shares the version (keyvault-certificates
    // recordings: `kid` = https://{vault}/keys/{name}/{version}).
    if (secret.managed) body.managed = true;
    body.attributes = attributesOf(state);
    if (Object.keys(state.tags).length > 0) body.tags = { ...state.tags };
    if (secret.managed && !opts.item)
      body.kid = `${KeyVaultStore.vaultUrl(vault.name)}/keys/${secret.name}/${state.version}`;
    return body;
  }

  /** The estate without values: what inspection shows. */
  describe() {
    return [...this.vaults.values()].map((vault) => ({
      name: vault.name,
      uri: `${KeyVaultStore.vaultUrl(vault.name)}/`,
      resourceId: this.topicOf(vault),
      secrets: [...vault.secrets.values()]
        .sort((a, b) => a.name.localeCompare(b.name))
        .map((secret) => {
          const current = secret.versions[secret.versions.length - 1]!;
          return {
            name: secret.name,
            id: `${KeyVaultStore.vaultUrl(vault.name)}/secrets/${secret.name}`,
            managed: secret.managed,
            currentVersion: current.version,
            versions: secret.versions.map((v) => ({
              version: v.version,
              id: `${KeyVaultStore.vaultUrl(vault.name)}/secrets/${secret.name}/${v.version}`,
              current: v === current,
              contentType: v.contentType,
              tags: { ...v.tags },
              attributes: attributesOf(v),
              enabled: v.enabled,
              notBefore: iso(v.nbf),
              expires: iso(v.exp),
              created: iso(v.created),
              updated: iso(v.updated),
              nearExpiryRaised: v.nearExpiryRaised,
              expiredRaised: v.expiredRaised,
            })),
          };
        }),
    }));
  }

  // --- the world: expiry events of current versions ---

  nextDueAt(): number | undefined {
    let min: number | undefined;
    for (const { state } of this.currentVersions()) {
      const at = dueAt(state);
      if (at !== undefined && (min === undefined || at < min)) min = at;
    }
    return min;
  }

  async fireDue(now: number): Promise<void> {
    const due = this.currentVersions()
      .map((entry) => ({ ...entry, at: dueAt(entry.state) }))
      .filter((entry): entry is typeof entry & { at: number } => entry.at !== undefined && entry.at <= now)
      .sort((a, b) => a.at - b.at);
    for (const { vault, secret, state } of due) {
      const exp = state.exp! * 1000;
      if (!state.nearExpiryRaised) {
        state.nearExpiryRaised = true;
        // A version first seen already past its expiry owes only the expiry event.
        if (exp > now) this.raise(vault, secret, state, 'Microsoft.KeyVault.SecretNearExpiry');
      }
      if (!state.expiredRaised && exp <= now) {
        state.expiredRaised = true;
        this.raise(vault, secret, state, 'Microsoft.KeyVault.SecretExpired');
      }
    }
  }

  private currentVersions() {
    const out: Array<{ vault: VaultState; secret: SecretState; state: SecretVersionState }> = [];
    for (const vault of this.vaults.values()) {
      for (const secret of vault.secrets.values()) {
        const state = secret.versions[secret.versions.length - 1];
        if (state) out.push({ vault, secret, state });
      }
    }
    return out;
  }

  private raise(vault: VaultState, secret: SecretState, state: SecretVersionState, eventType: string): void {
    const data: Record<string, unknown> = {
      Id: `${KeyVaultStore.vaultUrl(vault.name)}/secrets/${secret.name}/${state.version}`,
      VaultName: vault.name,
      ObjectType: 'Secret',
      ObjectName: secret.name,
      Version: state.version,
      NBF: state.nbf ?? null,
      EXP: state.exp ?? null,
    };
    // The event id derives from what the event is about, so a replay of the same story has the same ids.
    const event = this.bus.createEvent(this.topicOf(vault), secret.name, eventType, data, data.Id as string);
    this.bus.raise(event, vault.name);
  }

  private requireVault(name: string): VaultState {
    const vault = this.vault(name);
    if (!vault)
      throw new KeyVaultFault(
        404,
        'VaultNotFound',
        `The vault '${name}' is not part of the sandbox scenario.`,
      );
    return vault;
  }
}

function dueAt(state: SecretVersionState): number | undefined {
  if (state.exp === undefined) return undefined;
  const exp = state.exp * 1000;
  if (!state.nearExpiryRaised) return exp - NEAR_EXPIRY_MS;
  if (!state.expiredRaised) return exp;
  return undefined;
}

function attributesOf(state: SecretVersionState): Record<string, unknown> {
  const attributes: Record<string, unknown> = { enabled: state.enabled };
  if (state.nbf !== undefined) attributes.nbf = state.nbf;
  if (state.exp !== undefined) attributes.exp = state.exp;
  attributes.created = state.created;
  attributes.updated = state.updated;
  attributes.recoveryLevel = RECOVERY_LEVEL;
  attributes.recoverableDays = RECOVERABLE_DAYS;
  return attributes;
}

function checkTags(tags: Record<string, string> | undefined): void {
  if (tags === undefined) return;
  const count = Object.keys(tags).length;
  if (count > MAX_TAGS) {
    throw new KeyVaultFault(
      400,
      'BadParameter',
      `Too many tags: ${count}. A secret can have at most ${MAX_TAGS} tags.`,
    );
  }
  for (const [key, value] of Object.entries(tags)) {
    if (typeof value !== 'string')
      throw new KeyVaultFault(400, 'BadParameter', `The value of tag '${key}' must be a string.`);
  }
}

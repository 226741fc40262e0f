/**
 * Key Vault secrets, the state and the rules: versions, attributes, tags, and the events Key Vault
 * raises through Event Grid (`SecretNewVersionCreated` on every new version; `SecretNearExpiry` 30
 * days before and `SecretExpired` at the `exp` of the current version, once per version).
 *
 * Secret values live only here and leave only through `bundle(..., { withValue: true })`, which the
 * REST GET / PUT responses use. Every inspection view is built from `describe()`, which has no value.
 */
import { randomBytes } from 'node:crypto';
import type { SandboxClock, WorldTicker } from '../clock';
import type { EventBus } from '../eventgrid/delivery';

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
  versions: SecretVersionState[];
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

export function newVersionId(): string {
  return randomBytes(16).toString('hex');
}

const toSeconds = (ms: number) => Math.floor(ms / 1000);
const iso = (seconds: number | undefined) =>
  seconds === undefined ? undefined : new Date(seconds * 1000).toISOString();

export class KeyVaultStore implements WorldTicker {
  private readonly vaults = new Map<string, VaultState>();

  constructor(
    private readonly clock: SandboxClock,
    private readonly bus: EventBus,
    private readonly subscriptionId: string,
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

  /** Creates a version that exists before the story begins: no `SecretNewVersionCreated`. */
  seedSecret(vaultName: string, name: string, input: SetSecretInput): SecretVersionState {
    return this.setSecret(vaultName, name, input, { raise: false });
  }

  /** Creates a new version (the new current one) and raises `SecretNewVersionCreated`. */
  setSecret(
    vaultName: string,
    name: string,
    input: SetSecretInput,
    opts = { raise: true },
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
      secret = { name, versions: [] };
      vault.secrets.set(name.toLowerCase(), secret);
    }
    const now = toSeconds(this.clock.now().getTime());
    const state: SecretVersionState = {
      version: newVersionId(),
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

  /** Secrets of a vault (current version's properties), in name order. */
  listSecrets(vaultName: string): Array<{ secret: SecretState; state: SecretVersionState }> {
    const vault = this.requireVault(vaultName);
    return [...vault.secrets.values()]
      .sort((a, b) => a.name.localeCompare(b.name))
      .map((secret) => ({ secret, state: secret.versions[secret.versions.length - 1]! }));
  }

  listVersions(vaultName: string, name: string): Array<{ secret: SecretState; state: SecretVersionState }> {
    const { secret } = this.getVersion(vaultName, name, undefined);
    return secret.versions.map((state) => ({ secret, state }));
  }

  /** The REST body of a version. `withValue` only for the GET/PUT responses. */
  bundle(
    vaultName: string,
    secret: SecretState,
    state: SecretVersionState,
    opts: { withValue: boolean; versioned?: boolean },
  ) {
    const vault = this.requireVault(vaultName);
    const base = `${KeyVaultStore.vaultUrl(vault.name)}/secrets/${secret.name}`;
    const body: Record<string, unknown> = {};
    if (opts.withValue) body.value = state.value;
    body.id = opts.versioned === false ? base : `${base}/${state.version}`;
    if (state.contentType !== undefined) body.contentType = state.contentType;
    body.attributes = attributesOf(state);
    if (Object.keys(state.tags).length > 0) body.tags = { ...state.tags };
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
    const event = this.bus.createEvent(this.topicOf(vault), secret.name, eventType, data);
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

/**
 * Which Key Vaults the app may call. Event payloads name vaults (`data.Id`); they never decide where
 * the app connects: only vaults the policy names, or that `STAMPKEEPER_ALLOWED_VAULTS` lists, on a
 * Key Vault DNS suffix, are ever called.
 */

/** Key Vault DNS suffixes of the Azure clouds (public, China, US Government, Germany). */
export const KEY_VAULT_DNS_SUFFIXES = [
  'vault.azure.net',
  'vault.azure.cn',
  'vault.usgovcloudapi.net',
  'vault.microsoftazure.de',
] as const;

const VAULT_NAME = /^[a-z](?!.*--)[a-z0-9-]{1,22}[a-z0-9]$/;

/**
 * The normalised URL (`https://{name}.{suffix}`, lower case, no port, no path) of a vault given by
 * name (public cloud) or by URL, or `undefined` when it is not a Key Vault: another host, another
 * scheme, a port, credentials, a path beyond `/`, a query or a fragment.
 */
export function keyVaultUrl(vault: string): string | undefined {
  const text = vault.trim();
  if (VAULT_NAME.test(text.toLowerCase()))
    return `https://${text.toLowerCase()}.${KEY_VAULT_DNS_SUFFIXES[0]}`;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return undefined;
  }
  if (url.protocol !== 'https:' || url.port !== '' || url.username || url.password) return undefined;
  if ((url.pathname !== '/' && url.pathname !== '') || url.search || url.hash) return undefined;
  const host = url.hostname.toLowerCase();
  const suffix = KEY_VAULT_DNS_SUFFIXES.find((s) => host.endsWith(`.${s}`));
  if (!suffix) return undefined;
  const name = host.slice(0, -(suffix.length + 1));
  return VAULT_NAME.test(name) ? `https://${host}` : undefined;
}

/** The allowed vault URLs: the policy's and the settings'. */
export function vaultAllowList(
  policyVaultUrls: Iterable<string>,
  settingVaultUrls: Iterable<string>,
): Set<string> {
  const out = new Set<string>();
  for (const url of [...policyVaultUrls, ...settingVaultUrls]) {
    const normal = keyVaultUrl(url);
    if (normal) out.add(normal);
  }
  return out;
}

/** Whether `vaultUrl` (from an event) is one of `allowed` once normalised. */
export function isVaultAllowed(allowed: ReadonlySet<string>, vaultUrl: string): boolean {
  const normal = keyVaultUrl(vaultUrl);
  return normal !== undefined && allowed.has(normal);
}

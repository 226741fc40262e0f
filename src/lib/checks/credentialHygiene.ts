/**
 * Credential hygiene. In the vaults the policy names: secrets without an expiry and secrets valid
 * for longer than the policy allows (metadata only: no value is ever read). Cosmos DB accounts still
 * allowing key authentication (`disableLocalAuth` false) where Entra ID could serve, unless the
 * policy records why an account keeps it.
 */
import type { ChecksPolicy, CredentialHygieneCheck, Policy } from '../config/policy';
import type { CosmosDbInventory } from '../ports/inventory';
import type { Finding } from '../ports/reports';
import type { SecretProperties, SecretVault } from '../ports/secrets';
import { isoSeconds, unreadable } from './report';

const DAY_MS = 86_400_000;
/** Secrets listed per vault at most (a vault holds far fewer); the rest is reported as not checked. */
export const MAX_SECRETS_PER_VAULT = 5000;
/** Problem findings per vault at most; the others are counted in the vault's summary. */
const MAX_PROBLEMS_PER_VAULT = 100;

export interface CredentialHygieneDeps {
  vault: SecretVault;
  cosmos: CosmosDbInventory;
  policy: Policy;
  now: Date;
  checks: ChecksPolicy;
  abortSignal?: AbortSignal;
}

const vaultName = (vaultUrl: string) => new URL(vaultUrl).hostname.split('.')[0]!;

export async function checkCredentialHygiene(
  check: CredentialHygieneCheck,
  deps: CredentialHygieneDeps,
): Promise<Finding[]> {
  const findings: Finding[] = [];
  for (const vaultUrl of check.vaults) findings.push(...(await vaultFindings(vaultUrl, check, deps)));
  for (const account of check.cosmosDbAccounts) {
    let disabled: boolean;
    let name: string;
    try {
      const view = await deps.cosmos.getAccount(account.resourceId, { abortSignal: deps.abortSignal });
      disabled = view.disableLocalAuth;
      name = view.name;
    } catch (error) {
      findings.push(unreadable(account.resourceId, 'cosmos.keyAuth', 'the Cosmos DB account', error));
      continue;
    }
    const rotatedBy = deps.policy.secrets.filter(
      (s) =>
        s.rotation.provider === 'cosmosDbKeys' &&
        s.rotation.resourceId.toLowerCase() === account.resourceId.toLowerCase(),
    );
    const facts = {
      account: name,
      disableLocalAuth: disabled,
      keysRotatedBy: rotatedBy.map((s) => `${vaultName(s.vaultUrl)}/${s.name}`).join(', ') || null,
    };
    if (disabled) {
      findings.push({
        subject: account.resourceId,
        code: 'cosmos.keyAuth',
        status: 'ok',
        title: `${name}: key authentication disabled`,
        detail: 'The account accepts Entra ID only: no key can be leaked.',
        facts,
      });
    } else if (account.keyAuthReason) {
      findings.push({
        subject: account.resourceId,
        code: 'cosmos.keyAuth',
        status: 'ok',
        title: `${name}: key authentication kept, as the policy accepts`,
        detail: `Keys stay enabled: ${account.keyAuthReason}.`,
        facts: { ...facts, accepted: account.keyAuthReason },
      });
    } else {
      findings.push({
        subject: account.resourceId,
        code: 'cosmos.keyAuth',
        status: 'warning',
        title: `${name}: still allows key authentication`,
        detail:
          `The account accepts its keys (disableLocalAuth is false)${rotatedBy.length > 0 ? `, and stampkeeper rotates them for ${facts.keysRotatedBy}: some consumer still uses a key` : ''}. ` +
          'Where every consumer can use Entra ID (managed identities and Cosmos DB data-plane roles), keys are a credential that need not exist.',
        facts,
        action: {
          summary:
            'Move the consumers to Entra ID (Cosmos DB Built-in Data Contributor for their identities), then set disableLocalAuth: true; or record why keys stay (checks.credentialHygiene.cosmosDbAccounts[].keyAuthReason).',
        },
      });
    }
  }
  return findings;
}

async function vaultFindings(
  vaultUrl: string,
  check: CredentialHygieneCheck,
  deps: CredentialHygieneDeps,
): Promise<Finding[]> {
  const name = vaultName(vaultUrl);
  const secrets: SecretProperties[] = [];
  let truncated = false;
  try {
    for await (const secret of deps.vault.listSecrets(vaultUrl, { abortSignal: deps.abortSignal })) {
      if (secrets.length >= MAX_SECRETS_PER_VAULT) {
        truncated = true;
        break;
      }
      secrets.push(secret);
    }
  } catch (error) {
    return [unreadable(`vaults/${name}`, 'secret.expiry', `the secrets of vault ${name}`, error)];
  }
  const problems: Finding[] = [];
  for (const secret of secrets) {
    if (secret.enabled === false) continue;
    const subject = `vaults/${name}/secrets/${secret.name}`;
    const base = { vault: name, secret: secret.name, managed: secret.managed === true };
    if (!secret.expiresOn) {
      problems.push({
        subject,
        code: 'secret.noExpiry',
        status: 'warning',
        title: `${secret.name} in ${name} never expires`,
        detail: 'A secret without an expiry is never rotated by a deadline and raises no near-expiry event.',
        facts: { ...base, created: secret.createdOn ? isoSeconds(secret.createdOn) : null },
        action: {
          summary: `Set an expiry of at most ${check.maxValidityDays} days (az keyvault secret set-attributes --vault-name ${name} --name ${secret.name} --expires <date>), and rotate it before then.`,
        },
      });
      continue;
    }
    const from = secret.createdOn ?? secret.updatedOn;
    if (from) {
      const validDays = Math.round((secret.expiresOn.getTime() - from.getTime()) / DAY_MS);
      if (validDays > check.maxValidityDays) {
        problems.push({
          subject,
          code: 'secret.longExpiry',
          status: 'warning',
          title: `${secret.name} in ${name} is valid for ${validDays} days`,
          detail: `Its expiry (${isoSeconds(secret.expiresOn)}) is ${validDays} days after its creation: the policy allows at most ${check.maxValidityDays}.`,
          facts: {
            ...base,
            created: isoSeconds(from),
            expires: isoSeconds(secret.expiresOn),
            validDays,
            maxValidityDays: check.maxValidityDays,
          },
          action: {
            summary: `Shorten its expiry to at most ${check.maxValidityDays} days after creation, or rotate it with a shorter one.`,
          },
        });
      }
    }
  }
  const kept = problems.slice(0, MAX_PROBLEMS_PER_VAULT);
  const summary: Finding = {
    subject: `vaults/${name}`,
    code: 'secret.expiry',
    status: truncated ? 'unknown' : 'ok',
    title: `${name}: ${secrets.length} secret(s) checked, ${problems.length} with an expiry problem`,
    detail: truncated
      ? `The vault lists more than ${MAX_SECRETS_PER_VAULT} secrets: the rest were not checked.`
      : problems.length > kept.length
        ? `The first ${kept.length} problems are listed; ${problems.length - kept.length} more are not.`
        : 'Every secret was checked (metadata only).',
    facts: {
      vault: name,
      secrets: secrets.length,
      problems: problems.length,
      maxValidityDays: check.maxValidityDays,
    },
  };
  return [summary, ...kept];
}

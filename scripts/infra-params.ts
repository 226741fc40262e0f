/**
 * `npm run infra:params [-- --policy <file>] [--out <file>] [--check]`: turns the operations policy
 * into the parameter the Bicep consumes (`infra/policy.targets.json`, loaded by every
 * `infra/env/*.bicepparam`): the managed vaults with the role each needs, and what the notification
 * channels need (the Event Grid topic, the webhook URL settings).
 *
 * Roles follow from what the policy asks the app to do, the narrowest built-in role for it
 * (docs/deploy.md justifies each). `--check` changes nothing and fails when the file is out of
 * date; a test does the same, so the committed file cannot drift from the committed policy.
 */
import { spawnSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { loadPolicy, type Policy, type RotationProvider } from '../src/lib/config/policy';
import { ConfigurationError } from '../src/lib/core/errors';

/** Vault roles, least first (`infra/modules/types.bicep` `vaultRole`, `roles`). */
export const VAULT_ROLES = ['keyVaultReader', 'keyVaultSecretsOfficer'] as const;
export type VaultRole = (typeof VAULT_ROLES)[number];

/**
 * The role a secret's rotation needs on its vault. `manual`: the app only reads metadata (expiry,
 * versions) and notifies, so Key Vault Reader, which cannot read values. A provider that writes new
 * versions needs Key Vault Secrets Officer. Typed on the policy's provider union: a new provider
 * does not compile until it is given its role here.
 */
export const ROTATION_ROLES: Record<RotationProvider, VaultRole> = {
  manual: 'keyVaultReader',
  cosmosDbKeys: 'keyVaultSecretsOfficer',
  storageAccountKeys: 'keyVaultSecretsOfficer',
  serviceBusSasKeys: 'keyVaultSecretsOfficer',
};

export interface PolicyVault {
  name: string;
  url: string;
  role: VaultRole;
  secrets: string[];
}

/** Service Bus data roles, least first (`infra/modules/types.bicep` `roles`). */
export type ServiceBusRole = 'serviceBusDataReceiver' | 'serviceBusDataSender';

/**
 * A namespace the dead-letter entities live in, and exactly the entities the app needs a role on:
 * Azure Service Bus Data Receiver on each dead-letter entity (its trigger and the peek that reads
 * the batch whole) and on the topic's other subscriptions (their rules are read before a replay
 * through the topic: a rule manager needs Listen only); Data Sender on each replay target (the
 * queue, the subscription's topic, and `replay.targets`).
 */
export interface PolicyServiceBusNamespace {
  id: string;
  subscriptionId: string;
  resourceGroup: string;
  name: string;
  queueRoles: Array<{ queue: string; role: ServiceBusRole }>;
  topicRoles: Array<{ topic: string; role: ServiceBusRole }>;
  subscriptionRoles: Array<{ topic: string; subscription: string; role: ServiceBusRole }>;
  /** Monitoring Reader on the namespace: an entity of it names its region (the depth report reads its metrics). */
  metricsReader: boolean;
}

export interface PolicyTargets {
  $comment: string;
  policy: string;
  vaults: PolicyVault[];
  notifications: { eventGridTopic: boolean; urlSettings: string[] };
  serviceBus: {
    namespaces: PolicyServiceBusNamespace[];
    /** Each connection setting prefix of the dead-letter triggers, and the namespace it reaches (index). */
    connections: Array<{ setting: string; namespace: number }>;
  };
}

export const DEFAULT_POLICY = 'policy/stampkeeper.policy.yaml';
export const DEFAULT_OUT = 'infra/policy.targets.json';

/**
 * The vault name Azure knows a vault by: the first DNS label of `https://<name>.vault.<cloud>`.
 * Throws for a URL that is not a Key Vault URL (the policy also accepts other https hosts, which
 * infrastructure cannot target).
 */
export function vaultNameOf(vaultUrl: string): string {
  const host = new URL(vaultUrl).hostname.toLowerCase();
  const m = /^([a-z][a-z0-9-]{1,22}[a-z0-9])\.vault\.[a-z0-9.-]+$/.exec(host);
  if (!m) {
    throw new ConfigurationError(
      `vault ${vaultUrl}: not a Key Vault URL (https://<name>.vault.azure.net): infrastructure cannot target it`,
      [`vault ${vaultUrl}: not a Key Vault URL`],
    );
  }
  return m[1]!;
}

/** What the policy targets, deterministic (sorted) so the committed file diffs cleanly. */
export function derivePolicyTargets(policy: Policy, policyPath: string): PolicyTargets {
  const vaults = new Map<string, PolicyVault>();
  for (const secret of policy.secrets) {
    const name = vaultNameOf(secret.vaultUrl);
    const vault = vaults.get(name) ?? { name, url: secret.vaultUrl, role: 'keyVaultReader', secrets: [] };
    const needed = ROTATION_ROLES[secret.rotation.provider];
    if (VAULT_ROLES.indexOf(needed) > VAULT_ROLES.indexOf(vault.role)) vault.role = needed;
    vault.secrets.push(secret.name);
    vaults.set(name, vault);
  }
  const urlSettings = new Set<string>();
  let eventGridTopic = false;
  for (const channel of policy.notifications.channels) {
    if (channel.type === 'eventGrid') eventGridTopic = true;
    else urlSettings.add(channel.urlSetting);
  }
  // Rotation consumers' webhook and health URLs are credentials kept the same way (Key Vault references).
  for (const secret of policy.secrets) {
    if (secret.rotation.provider === 'manual') continue;
    for (const consumer of secret.rotation.consumers) {
      if (consumer.type === 'webhook') urlSettings.add(consumer.urlSetting);
      if (consumer.type === 'waitForReload' && consumer.healthUrlSetting)
        urlSettings.add(consumer.healthUrlSetting);
    }
  }
  return {
    $comment: `Generated by \`npm run infra:params\` from ${policyPath}. Do not edit: a test checks it matches the policy.`,
    policy: policyPath,
    vaults: [...vaults.values()]
      .map((v) => ({ ...v, secrets: [...new Set(v.secrets)].sort() }))
      .sort((a, b) => a.name.localeCompare(b.name)),
    notifications: { eventGridTopic, urlSettings: [...urlSettings].sort() },
    serviceBus: deriveServiceBus(policy),
  };
}

/** The namespaces of the dead-letter entities, the roles on their entities, and the connections. */
export function deriveServiceBus(policy: Policy): PolicyTargets['serviceBus'] {
  const namespaces = new Map<string, PolicyServiceBusNamespace>();
  const roleSets = new Map<string, Set<string>>();
  const grant = (namespaceId: string, key: string) => {
    const id = namespaceId.toLowerCase();
    let set = roleSets.get(id);
    if (!set) {
      set = new Set();
      roleSets.set(id, set);
      const parts = namespaceId.split('/');
      namespaces.set(id, {
        id: namespaceId,
        subscriptionId: parts[2]!,
        resourceGroup: parts[4]!,
        name: parts[8]!,
        queueRoles: [],
        topicRoles: [],
        subscriptionRoles: [],
        metricsReader: false,
      });
    }
    set.add(key);
  };
  const R: ServiceBusRole = 'serviceBusDataReceiver';
  const S: ServiceBusRole = 'serviceBusDataSender';
  for (const entity of policy.deadLetters) {
    const ns = entity.namespaceId;
    if (entity.region) grant(ns, 'm');
    if ('queue' in entity.source) {
      grant(ns, `q|${entity.source.queue}|${R}`);
      grant(ns, `q|${entity.source.queue}|${S}`);
    } else {
      const { topic, subscription } = entity.source;
      grant(ns, `s|${topic}|${subscription}|${R}`);
      grant(ns, `t|${topic}|${S}`);
      for (const other of entity.topicSubscriptions) grant(ns, `s|${topic}|${other}|${R}`);
    }
    for (const target of entity.replay.targets)
      grant(ns, target.type === 'queue' ? `q|${target.name}|${S}` : `t|${target.name}|${S}`);
  }
  for (const [id, set] of roleSets) {
    const namespace = namespaces.get(id)!;
    for (const key of [...set].sort()) {
      const [kind, a, b, c] = key.split('|') as [string, string, string, string | undefined];
      if (kind === 'm') namespace.metricsReader = true;
      else if (kind === 'q') namespace.queueRoles.push({ queue: a, role: b as ServiceBusRole });
      else if (kind === 't') namespace.topicRoles.push({ topic: a, role: b as ServiceBusRole });
      else namespace.subscriptionRoles.push({ topic: a, subscription: b, role: c as ServiceBusRole });
    }
  }
  const list = [...namespaces.values()].sort((a, b) => a.id.toLowerCase().localeCompare(b.id.toLowerCase()));
  const connections = new Map<string, number>();
  for (const entity of policy.deadLetters) {
    connections.set(
      entity.connection,
      list.findIndex((n) => n.id.toLowerCase() === entity.namespaceId.toLowerCase()),
    );
  }
  return {
    namespaces: list,
    connections: [...connections]
      .map(([setting, namespace]) => ({ setting, namespace }))
      .sort((a, b) => a.setting.localeCompare(b.setting)),
  };
}

/**
 * The file's text, formatted by the repository's formatter (Biome, with biome.json) so that the
 * generated file passes `npm run lint` as written.
 */
export function renderPolicyTargets(targets: PolicyTargets, rootDir: string, outPath: string): string {
  const json = `${JSON.stringify(targets, null, 2)}\n`;
  const biome = require.resolve('@biomejs/biome/bin/biome', { paths: [rootDir] });
  const formatted = spawnSync(
    process.execPath,
    [biome, 'format', `--stdin-file-path=${relative(rootDir, outPath)}`],
    {
      cwd: rootDir,
      input: json,
      encoding: 'utf8',
    },
  );
  if (formatted.status !== 0) throw new Error(`biome format failed: ${formatted.stderr}`);
  return formatted.stdout;
}

export interface InfraParamsOptions {
  rootDir?: string;
  policyPath?: string;
  outPath?: string;
}

/** Reads and validates the policy, returns the parameter file's path and expected text. */
export async function generatePolicyTargets(
  options: InfraParamsOptions = {},
): Promise<{ outPath: string; text: string; targets: PolicyTargets }> {
  const rootDir = resolve(options.rootDir ?? join(__dirname, '..'));
  const policyPath = resolve(rootDir, options.policyPath ?? DEFAULT_POLICY);
  const outPath = resolve(rootDir, options.outPath ?? DEFAULT_OUT);
  const policy = await loadPolicy(policyPath);
  const targets = derivePolicyTargets(policy, relative(rootDir, policyPath).split('\\').join('/'));
  return { outPath, text: renderPolicyTargets(targets, rootDir, outPath), targets };
}

function parseArgs(argv: readonly string[]): InfraParamsOptions & { check: boolean } {
  const options: InfraParamsOptions & { check: boolean } = { check: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = argv[i + 1];
    if (arg === '--check') options.check = true;
    else if (arg === '--policy' && value) {
      options.policyPath = resolve(value);
      i++;
    } else if (arg === '--out' && value) {
      options.outPath = resolve(value);
      i++;
    } else {
      throw new Error(
        `usage: npm run infra:params [-- --policy <file>] [--out <file>] [--check]; unexpected ${arg}`,
      );
    }
  }
  return options;
}

if (require.main === module) {
  Promise.resolve()
    .then(async () => {
      const options = parseArgs(process.argv.slice(2));
      const { outPath, text, targets } = await generatePolicyTargets(options);
      const current = await readFile(outPath, 'utf8').catch(() => undefined);
      const where = relative(process.cwd(), outPath) || outPath;
      if (options.check) {
        if (current !== text) {
          console.error(`${where} is out of date with the policy: run npm run infra:params`);
          process.exitCode = 1;
        } else console.log(`${where} matches the policy`);
        return;
      }
      if (current !== text) await writeFile(outPath, text);
      console.log(
        `${where}: ${targets.vaults.length} vault(s), event grid topic ${targets.notifications.eventGridTopic ? 'yes' : 'no'}, ` +
          `${targets.notifications.urlSettings.length} URL setting(s), ${targets.serviceBus.namespaces.length} Service Bus namespace(s)${current === text ? ' (unchanged)' : ''}`,
      );
    })
    .catch((error: unknown) => {
      if (error instanceof ConfigurationError) {
        console.error(`infra:params: ${error.message}`);
        for (const p of error.problems) console.error(`  ${p}`);
      } else console.error(`infra:params: ${error instanceof Error ? error.message : String(error)}`);
      process.exitCode = 1;
    });
}

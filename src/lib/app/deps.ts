import { EventGridChannel } from '../azure/eventGridChannel';
import { KeyVaultSecretVault } from '../azure/keyVaultSecrets';
import { type Platform, resolvePlatform } from '../azure/platform';
import { WebhookChannel } from '../azure/webhookChannel';
import { channelsFor, findManagedSecret, loadPolicySync, type Policy } from '../config/policy';
import { checkPolicyAgainstSettings, loadSettings, type Settings } from '../config/settings';
import { ConfigurationError } from '../core/errors';
import type { Logger } from '../core/logging';
import { createLogger } from '../core/logging';
import { type ChannelEntry, createNotifier } from '../notify/notifier';
import type { Notifier } from '../ports/notifier';
import type { SecretVault } from '../ports/secrets';
import type { SecretEventDeps, SecretPolicyView } from '../rotation/handleSecretEvent';
import { createStateStores, type StateStores } from '../state';

/** Everything the functions need, built once per process by `getDeps()`. */
export interface AppDeps {
  settings: Settings;
  policy: Policy;
  platform: Platform;
  state: StateStores;
  vault: SecretVault;
  notifier: Notifier;
  secretPolicy: SecretPolicyView;
  /** Deps of the secret event use case, with a logger bound to one invocation. */
  secretEventDeps(logger: Logger): SecretEventDeps;
  /** Creates the tables and queues on first call (memoized; a failure is retried on the next call). */
  ready(): Promise<void>;
}

let cached: AppDeps | undefined;

/**
 * Builds (once) and returns the app's dependencies: validates the settings and the policy (and the
 * policy against the settings), so a wrong setting or policy stops start-up with a message that
 * names it. Synchronous: it only creates clients, it does not call Azure.
 */
export function getDeps(env: NodeJS.ProcessEnv = process.env): AppDeps {
  cached ??= buildDeps(loadSettings(env));
  return cached;
}

/** Forgets the built deps (tests that start the app twice in one process). */
export function resetDeps(): void {
  cached = undefined;
}

export function buildDeps(settings: Settings, platform: Platform = resolvePlatform(settings)): AppDeps {
  const policy = loadPolicySync(settings.policyPath);
  const problems = checkPolicyAgainstSettings(policy, settings);
  if (problems.length > 0) {
    throw new ConfigurationError(
      `the policy ${policy.source} does not match the settings:\n  ${problems.join('\n  ')}`,
      problems,
    );
  }
  const logger = createLogger(console, { component: 'stampkeeper' });
  const state = createStateStores({
    connectionString: settings.storageConnectionString,
    tablePrefix: settings.tablePrefix,
    workQueueName: settings.workQueueName,
    clock: platform.clock,
  });
  const vault = new KeyVaultSecretVault(platform.credential, { httpClient: platform.httpClient });
  const source = `/stampkeeper/${settings.environment}`;
  const entries: ChannelEntry[] = policy.notifications.channels.map((channel) => ({
    minSeverity: channel.minSeverity,
    channel:
      channel.type === 'eventGrid'
        ? new EventGridChannel(channel.name, settings.eventGridTopicEndpoint!, platform.credential, source, {
            httpClient: platform.httpClient,
          })
        : new WebhookChannel(
            channel.name,
            channel.type,
            settings.settingValue(channel.urlSetting)!,
            platform.webhookClient,
            source,
          ),
  }));
  const notifier = createNotifier(entries, logger);
  const secretPolicy: SecretPolicyView = {
    lookup(vaultUrl, secretName) {
      const managed = findManagedSecret(policy, vaultUrl, secretName);
      if (!managed) return undefined;
      return {
        owner: managed.owner,
        channels: channelsFor(policy, managed).map((c) => c.name),
        rotation: managed.rotation.provider,
      };
    },
    defaultChannels: () => channelsFor(policy, undefined).map((c) => c.name),
  };
  let ensured: Promise<void> | undefined;
  return {
    ready() {
      if (!ensured) {
        ensured = state.ensure().catch((error: unknown) => {
          ensured = undefined;
          throw error;
        });
      }
      return ensured;
    },
    settings,
    policy,
    platform,
    state,
    vault,
    notifier,
    secretPolicy,
    secretEventDeps: (invocationLogger) => ({
      vault,
      notifier,
      audit: state.audit,
      idempotency: state.idempotency,
      clock: platform.clock,
      logger: invocationLogger,
      policy: secretPolicy,
      environment: settings.environment,
      dryRun: settings.dryRun,
      idempotencyTtlMs: settings.idempotencyTtlHours * 3_600_000,
    }),
  };
}

import { EventGridChannel } from '../azure/eventGridChannel';
import { KeyVaultSecretVault } from '../azure/keyVaultSecrets';
import { type Platform, platformGeneration, resolvePlatform } from '../azure/platform';
import { WebhookChannel } from '../azure/webhookChannel';
import { loadConfigurationSync } from '../config/configuration';
import { channelsFor, findManagedSecret, type Policy } from '../config/policy';
import type { Settings } from '../config/settings';
import type { Logger } from '../core/logging';
import { createLogger } from '../core/logging';
import { type ChannelEntry, createNotifier } from '../notify/notifier';
import type { Notifier } from '../ports/notifier';
import type { SecretVault } from '../ports/secrets';
import type { AlertDeps } from '../remediation/handleAlert';
import type { SecretEventDeps, SecretPolicyView } from '../rotation/handleSecretEvent';
import { createRunEngine, type RunEngine } from '../runs';
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
  /** Deps of the alert intake use case, with a logger bound to one invocation. */
  alertDeps(logger: Logger): AlertDeps;
  /** The run engine (step machine); run kinds register with it as capabilities arrive. */
  runs: RunEngine;
  /** Creates the tables and queues on first call (memoized; a failure is retried on the next call). */
  ready(): Promise<void>;
}

const RUN_LEASE_MS = 12 * 60_000;

let cached: AppDeps | undefined;
/** The platform generation `cached` was built on (another copy of the app may change the platform). */
let cachedGeneration = -1;

/**
 * Builds (once) and returns the app's dependencies: validates the settings and the policy (and the
 * policy against the settings), so a wrong setting or policy stops start-up with a message that
 * names it. Synchronous: it only creates clients, it does not call Azure.
 */
export function getDeps(env?: NodeJS.ProcessEnv): AppDeps {
  if (!cached || cachedGeneration !== platformGeneration()) {
    const { settings, policy } = loadConfigurationSync(env);
    cachedGeneration = platformGeneration();
    cached = buildDeps(settings, policy);
  }
  return cached;
}

/**
 * Forgets the built deps of this copy of the module (tests that start the app twice in one
 * process). Deps are also rebuilt when the platform override changes, in every copy (the bundle's too).
 */
export function resetDeps(): void {
  cached = undefined;
}

/** Builds the deps from validated settings and policy (see `loadConfigurationSync`). */
export function buildDeps(
  settings: Settings,
  policy: Policy,
  platform: Platform = resolvePlatform(settings),
): AppDeps {
  const logger = createLogger(console, { component: 'stampkeeper' });
  const state = createStateStores({
    ...(settings.storageIdentity
      ? { ...settings.storageIdentity, credential: platform.credential }
      : { connectionString: settings.storageConnectionString }),
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
    managedVaults: () => [...new Set(policy.secrets.map((s) => s.vaultUrl))],
  };
  const idempotencyTtlMs = settings.idempotencyTtlHours * 3_600_000;
  const runs = createRunEngine({
    runs: state.runs,
    queue: state.workQueue,
    audit: state.audit,
    clock: platform.clock,
    logger,
    kinds: [],
    // Longer than host.json's functionTimeout (10 min): a step that runs to the timeout still
    // records its result before another worker may take the run over.
    options: { leaseMs: RUN_LEASE_MS },
  });
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
    runs,
    state,
    vault,
    notifier,
    secretPolicy,
    alertDeps: (invocationLogger) => ({
      audit: state.audit,
      idempotency: state.idempotency,
      notifier,
      clock: platform.clock,
      logger: invocationLogger,
      defaultChannels: policy.notifications.defaults,
      environment: settings.environment,
      dryRun: settings.dryRun,
      idempotencyTtlMs,
    }),
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
      idempotencyTtlMs,
    }),
  };
}

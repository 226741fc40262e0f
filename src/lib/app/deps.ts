/**
 * The composition root: builds every adapter once per process, and hands each use case exactly the
 * dependencies it needs through one factory per use case. Functions call a factory with the logger of
 * their invocation; they never reach into the stores or build a dependency themselves, and every
 * logger the notifier, the run engine and the use cases receive writes through that invocation.
 *
 * Cold start: importing the app loads no Azure SDK. A cold start pays for importing the deployment
 * package, so each SDK is loaded (`import()`, which the ES-module build puts in a chunk of its
 * own, read only when first imported) the first time a function needs it: the Storage SDKs when `load()` (or `ready()`)
 * first runs, Key Vault on the first vault call, Event Grid on the first publish, `@azure/identity`
 * on the first token. `npm run bench -- coldStart` measures it.
 */
import { EventGridChannel } from '../azure/eventGridChannel';
import { KeyVaultSecretVault } from '../azure/keyVaultSecrets';
import { type Platform, platformGeneration, resolvePlatform } from '../azure/platform';
import { WebhookChannel } from '../azure/webhookChannel';
import type { CheckDeps } from '../checks/runCheck';
import { loadConfigurationSync } from '../config/configuration';
import { channelsFor, findManagedSecret, type Policy } from '../config/policy';
import type { Settings } from '../config/settings';
import { isVaultAllowed, vaultAllowList } from '../config/vaults';
import { ConfigurationError } from '../core/errors';
import type { Logger } from '../core/logging';
import { isLoopbackHttpUrl } from '../core/urls';
import type { DeadLetterDeps } from '../deadletters';
import { bulkReplayKind } from '../deadletters/bulkReplay';
import { deadLetterAdapters } from '../deadletters/wiring';
import type { GateDeps } from '../gates/evaluate';
import { type GateRunDeps, gateKind } from '../gates/gateRun';
import type { RetentionDeps } from '../maintenance/applyRetention';
import { type ChannelEntry, createNotifier } from '../notify/notifier';
import { announceRemediation } from '../remediation/announce';
import type { AlertDeps } from '../remediation/handleAlert';
import { REMEDIATION_KIND, type RemediationDeps, remediationKind } from '../remediation/playbookRun';
import type { ScaleBackDeps } from '../remediation/scaleBack';
import type { SecretEventDeps, SecretPolicyView } from '../rotation/handleSecretEvent';
import { type RollCallbackDeps, registerRollCallback, webhookCallbacks } from '../rotation/rollCallbacks';
import {
  consumerProblems,
  ROTATION_DEADLINE_MS,
  type RotationDeps,
  rotationKind,
} from '../rotation/rotation';
import { announceRotation, type RotationStartDeps, startRotation } from '../rotation/startRotation';
import type { SweepDeps } from '../rotation/sweepSecrets';
import { checkLeaseCoversTimeout, createRunEngine, type RunEngine } from '../runs';
import type { StateStores } from '../state';
import type { AuditQueryDeps, RejectionQueryDeps } from './audit';
import { inspectionAdapters } from './checksWiring';
import type { HealthDeps } from './health';
import { remediationAdapters } from './remediationWiring';
import { rotationAdapters } from './rotationWiring';

/** Everything the functions need, built once per process by `getDeps()`. */
export interface AppDeps {
  /** Validated settings (functions read names from them: queue names, schedules). */
  readonly settings: Settings;
  readonly policy: Policy;
  /**
   * Loads the Storage SDKs and builds the state stores (no network call; memoized, a failure is
   * retried on the next call). The factories' state stores are usable once it has resolved: call
   * it (or `ready()`) before any factory.
   */
  load(): Promise<void>;
  /** `load()`, then creates the tables and queues on first call (memoized; a failure is retried on the next call). */
  ready(): Promise<void>;
  /** Deps of `handleSecretEvent` and `recordRejectedEvent`. */
  secretEvents(logger: Logger): SecretEventDeps;
  /** Deps of `sweepSecrets`: those of `secretEvents`, and the managed secrets to check against the policy. */
  secretSweep(logger: Logger): SweepDeps;
  /** Deps of `handleAlert` and `recordRejectedAlert`. */
  alerts(logger: Logger): AlertDeps;
  /** Deps of `queryAudit`. */
  auditQuery(logger: Logger): AuditQueryDeps;
  /** Deps of `queryRejections`. */
  rejectionQuery(logger: Logger): RejectionQueryDeps;
  /** Deps of `checkHealth`. */
  health(logger: Logger): HealthDeps;
  /** Deps of `applyRetention`. */
  retention(logger: Logger): RetentionDeps;
  /** The run engine (step machine), logging through the invocation, with every run kind registered. */
  runs(logger: Logger): RunEngine;
  /** Deps of `startRotation` (the rotation endpoints). */
  rotations(logger: Logger): RotationStartDeps;
  /** Deps of `scaleBackPlaybooks` (the scale-back timer) and the remediation endpoints. */
  remediation(logger: Logger): ScaleBackDeps;
  /** Deps of `runCheck` (the scheduled maintenance checks and their endpoints). */
  checks(logger: Logger): CheckDeps;
  /** Deps of the gate endpoints: `evaluateGate`, and the engine that runs waiting evaluations. */
  gates(logger: Logger): { gate: GateDeps; engine: RunEngine };
  /** Deps of `recordRollCallback` (the callback endpoint of webhook rolls). */
  rollCallbacks(logger: Logger): RollCallbackDeps;
  /** Deps of the dead-letter arrivals, reports, endpoints and replays. */
  deadLetters(logger: Logger): DeadLetterDeps;
}

/** How much longer than `functionTimeout` a claim or a lease protects work in progress. */
const LEASE_MARGIN_MS = 2 * 60_000;
/** Longest physical queue delay on the sandbox (whose clock moves by hand): waits follow its clock within this. */
const SANDBOX_MAX_QUEUE_DELAY_MS = 5_000;

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
  let stores: StateStores | undefined;
  let loading: Promise<void> | undefined;
  const load = (): Promise<void> => {
    loading ??= import('../state/index.js')
      .then(({ createStateStores }) => {
        stores = createStateStores({
          ...(settings.storageIdentity
            ? { ...settings.storageIdentity, credential: platform.credential }
            : { connectionString: settings.storageConnectionString }),
          tablePrefix: settings.tablePrefix,
          workQueueName: settings.workQueueName,
          clock: platform.clock,
        });
      })
      .catch((error: unknown) => {
        loading = undefined;
        throw error;
      });
    return loading;
  };
  const state = deferredStateStores(() => stores);
  const vault = new KeyVaultSecretVault(platform.credential, { httpClient: platform.httpClient });
  const source = `/stampkeeper/${settings.environment}`;
  const channels: ChannelEntry[] = policy.notifications.channels.map((channel) => ({
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
  // The vaults the credential hygiene check reads are the policy's too (infra gives them Key Vault Reader).
  const managedVaults = [
    ...new Set([
      ...policy.secrets.map((s) => s.vaultUrl),
      ...(policy.checks.credentialHygiene?.vaults ?? []),
    ]),
  ];
  const allowedVaults = vaultAllowList(managedVaults, settings.allowedVaults);
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
    managedVaults: () => managedVaults,
    vaultAllowed: (vaultUrl) => isVaultAllowed(allowedVaults, vaultUrl),
  };
  const idempotencyTtlMs = settings.idempotencyTtlHours * 3_600_000;
  // Longer than the longest invocation (host.json's functionTimeout): work that runs to the timeout
  // still completes (or records its result) before another attempt may take it over.
  const claimLeaseMs = settings.functionTimeoutMs + LEASE_MARGIN_MS;
  // At start-up: a run lease that an invocation could outlive would hand a step in flight to a
  // second worker.
  checkLeaseCoversTimeout(claimLeaseMs, settings.functionTimeoutMs);
  let ensured: Promise<void> | undefined;
  const vaultCache: HealthDeps['vaultCache'] = new Map();

  const ensure = (): Promise<void> => {
    if (!ensured) {
      ensured = (async () => {
        await load();
        await state.ensure();
      })().catch((error: unknown) => {
        ensured = undefined;
        throw error;
      });
    }
    return ensured;
  };

  const adapters = rotationAdapters(platform, { callbacks: webhookCallbacks(() => state.rollCallbacks) });
  const inspection = inspectionAdapters(platform, policy);
  const gateDeps = (): GateDeps => ({
    policy,
    logs: inspection.logs,
    metrics: inspection.metrics,
    clock: platform.clock,
    audit: state.audit,
  });
  const gateRunDeps = (logger: Logger): GateRunDeps => ({
    ...gateDeps(),
    notifier: createNotifier(channels, logger),
    idempotency: state.idempotency,
    environment: settings.environment,
    idempotencyTtlMs,
    claimLeaseMs,
  });
  const rotationDeps = (logger: Logger): RotationDeps => ({
    vault,
    keys: adapters.keys,
    rollerFor: adapters.rollerFor,
    settingValue: settings.settingValue,
    registerCallback: (runId, consumer, abortSignal) => {
      // The platform's host name: https in Azure; the local host serves plain http on loopback.
      const host = settings.hostName();
      if (!host) {
        throw new ConfigurationError(
          `consumer ${consumer} completes by callback, and the app does not know its host name (WEBSITE_HOSTNAME, which the platform sets)`,
        );
      }
      const scheme = isLoopbackHttpUrl(`http://${host}/`) ? 'http' : 'https';
      return registerRollCallback(
        { runId, consumer, baseUrl: `${scheme}://${host}`, ttlMs: ROTATION_DEADLINE_MS },
        { store: state.rollCallbacks, clock: platform.clock },
        abortSignal,
      );
    },
    callbackProblem: () =>
      settings.hostName()
        ? undefined
        : 'the app does not know its host name (WEBSITE_HOSTNAME, which the platform sets)',
    announce: (run, summary, abortSignal) =>
      announceRotation(
        run,
        summary,
        {
          notifier: createNotifier(channels, logger),
          idempotency: state.idempotency,
          audit: state.audit,
          clock: platform.clock,
          environment: settings.environment,
          idempotencyTtlMs,
          claimLeaseMs,
        },
        abortSignal,
      ),
  });
  const remediationPorts = remediationAdapters(platform, policy.playbooks);
  const remediationDeps = (logger: Logger, runs: () => RunEngine): RemediationDeps => ({
    capacity: remediationPorts.capacity,
    metrics: remediationPorts.metrics,
    audit: state.audit,
    history: (target, limit) => runs().runsForTarget(REMEDIATION_KIND, target, { limit }),
    announce: (run, notice, abortSignal) =>
      announceRemediation(
        run,
        notice,
        {
          notifier: createNotifier(channels, logger),
          idempotency: state.idempotency,
          audit: state.audit,
          clock: platform.clock,
          idempotencyTtlMs,
          claimLeaseMs,
        },
        abortSignal,
      ),
    environment: settings.environment,
  });
  const engine = (logger: Logger): RunEngine => {
    const built: RunEngine = createRunEngine({
      runs: state.runs,
      queue: state.workQueue,
      audit: state.audit,
      clock: platform.clock,
      logger,
      kinds: [
        rotationKind(rotationDeps(logger)),
        remediationKind(remediationDeps(logger, () => built)),
        gateKind(gateRunDeps(logger)),
        bulkReplayKind(deadLetters),
      ],
      notify: {
        notifier: createNotifier(channels, logger),
        idempotency: state.idempotency,
        defaultChannels: policy.notifications.defaults,
        idempotencyTtlMs,
        claimLeaseMs,
      },
      options: {
        leaseMs: claimLeaseMs,
        functionTimeoutMs: settings.functionTimeoutMs,
        // The sandbox clock is not the wall clock: queue delays (wall time) are capped, and a
        // message that shows before its run is due by that clock is sent again for the rest.
        ...(platform.kind === 'sandbox' ? { maxQueueDelayMs: SANDBOX_MAX_QUEUE_DELAY_MS } : {}),
      },
    });
    return built;
  };
  const deadLetterParts = deadLetterAdapters(settings, policy, platform);
  const deadLetters = (logger: Logger): DeadLetterDeps => ({
    archive: state.deadLetters,
    busFor: deadLetterParts.busFor,
    metrics: deadLetterParts.metrics,
    notifier: createNotifier(channels, logger),
    idempotency: state.idempotency,
    audit: state.audit,
    clock: platform.clock,
    logger,
    policy,
    environment: settings.environment,
    idempotencyTtlMs,
    claimLeaseMs,
    dryRun: settings.dryRun,
  });
  const rotations = (logger: Logger): RotationStartDeps => ({
    engine: engine(logger),
    policy,
    clock: platform.clock,
    logger,
    vault,
    consumerProblems: (rotation) => consumerProblems(rotation, rotationDeps(logger)),
  });

  const secretEvents = (logger: Logger): SecretEventDeps => ({
    vault,
    notifier: createNotifier(channels, logger),
    audit: state.audit,
    idempotency: state.idempotency,
    rejections: state.rejections,
    clock: platform.clock,
    logger,
    policy: secretPolicy,
    environment: settings.environment,
    dryRun: settings.dryRun,
    idempotencyTtlMs,
    claimLeaseMs,
    startRotation: (request) => startRotation(request, rotations(logger)),
  });

  return {
    settings,
    policy,
    load,
    ready: ensure,
    rotations,
    deadLetters,
    rollCallbacks: (logger) => ({ store: state.rollCallbacks, clock: platform.clock, logger }),
    secretEvents,
    secretSweep: (logger) => ({
      ...secretEvents(logger),
      managedSecrets: (vaultUrl) =>
        policy.secrets
          .filter((s) => s.vaultUrl === vaultUrl)
          .map((s) => ({
            name: s.name,
            owner: s.owner,
            channels: channelsFor(policy, s).map((c) => c.name),
            rotation:
              s.rotation.provider === 'manual'
                ? { provider: 'manual' as const }
                : { provider: s.rotation.provider, resourceId: s.rotation.resourceId },
          })),
    }),
    alerts: (logger) => ({
      audit: state.audit,
      idempotency: state.idempotency,
      rejections: state.rejections,
      notifier: createNotifier(channels, logger),
      clock: platform.clock,
      logger,
      defaultChannels: policy.notifications.defaults,
      environment: settings.environment,
      dryRun: settings.dryRun,
      idempotencyTtlMs,
      claimLeaseMs,
      playbooks: policy.playbooks,
      playbookChannels: (playbook) => channelsFor(policy, playbook).map((c) => c.name),
      runs: engine(logger),
    }),
    remediation: (logger) => ({
      playbooks: policy.playbooks,
      capacity: remediationPorts.capacity,
      metrics: remediationPorts.metrics,
      runs: engine(logger),
      playbookChannels: (playbook) => channelsFor(policy, playbook).map((c) => c.name),
      clock: platform.clock,
      logger,
      dryRun: settings.dryRun,
    }),
    auditQuery: (logger) => ({ audit: state.audit, clock: platform.clock, logger }),
    rejectionQuery: (logger) => ({ rejections: state.rejections, clock: platform.clock, logger }),
    health: (logger) => ({
      state: { ready: () => ensure(), ping: (options) => state.ping(options) },
      vaultCache,
      vault,
      clock: platform.clock,
      logger,
      policy,
      managedVaults,
      environment: settings.environment,
      platform: platform.kind,
    }),
    retention: (logger) => ({
      audit: state.audit,
      idempotency: state.idempotency,
      leases: state.leases,
      runs: state.runs,
      rejections: state.rejections,
      reports: state.reports,
      clock: platform.clock,
      logger,
    }),
    runs: engine,
    checks: (logger) => ({
      policy,
      clock: platform.clock,
      logger,
      reports: state.reports,
      audit: state.audit,
      notifier: createNotifier(channels, logger),
      idempotency: state.idempotency,
      environment: settings.environment,
      idempotencyTtlMs,
      claimLeaseMs,
      cosmos: inspection.cosmos,
      kubernetes: inspection.kubernetes,
      quotas: inspection.quotas,
      vault,
      runtime: {
        node: process.versions.node,
        ...(settings.extensionBundle ? { extensionBundle: settings.extensionBundle } : {}),
      },
    }),
    gates: (logger) => ({ gate: gateDeps(), engine: engine(logger) }),
  };
}

/**
 * The state stores before `load()` has built them: a view that hands out the real stores once they
 * exist and says plainly when a store is used too early (a programming error: every function
 * awaits `load()` or `ready()` before it uses a factory).
 */
function deferredStateStores(loaded: () => StateStores | undefined): StateStores {
  return new Proxy({} as StateStores, {
    get(_target, key) {
      const stores = loaded();
      if (!stores) {
        throw new Error(
          `The state stores were used before they were loaded (${String(key)}): await deps.load() or deps.ready() first.`,
        );
      }
      const value = Reflect.get(stores, key);
      return typeof value === 'function' ? value.bind(stores) : value;
    },
  });
}

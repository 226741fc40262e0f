/**
 * `createSandbox`: wires the emulated services, the world (clock + Event Grid deliveries) and the
 * inspection view from one scenario. Each service is a module of its own, registered here by host
 * name; adding a service means adding its emulator and, if it raises events, a `WorldTicker`.
 */

import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { HttpClient } from '@azure/core-rest-pipeline';
import { type AlertDeliveryTarget, createAlerting, type SandboxAlerting } from './alerting';
import type { WebhookCallbackRecord } from './arm/consumerEndpoints';
import type { ConsumerView, DowntimeReport } from './arm/consumers';
import { type ArmEstate, type ArmWorld, createArmWorld } from './arm/world';
import { createSandboxClock, type SandboxClock } from './clock';
import { createSandboxCredential, type SandboxCredential } from './credential';
import {
  type DeliveryAttempt,
  EventBus,
  type EventDeliveryTarget,
  type RaisedEvent,
  type SubscriptionValidation,
  type UndeliveredEvent,
} from './eventgrid/delivery';
import { EventGridSink, type PublishedEvent } from './eventgrid/sink';
import { type AdvanceRequest, handleInspectionHttp, parseAdvance } from './inspect';
import { KeyVaultEmulator, type KeyVaultRequestRecord } from './keyvault/http';
import { KeyVaultStore, type SecretAttributesInput } from './keyvault/store';
import { VaultThrottle } from './keyvault/throttle';
import { createMonitor, type MonitorSandbox } from './monitor';
import { createRoutingHttpClient, type RoutedRequest } from './router';
import { type ResolvedScenario, resolveScenario, type Scenario, withoutSecretValues } from './scenario';
import type { ServiceBusInspector } from './servicebus/inspect';
import { type WebhookRecord, WebhookSink } from './webhookSink';

export interface CreateSandboxOptions {
  /** The estate; validated here too. Omitted: an empty estate. */
  scenario?: Scenario;
  /** A clock to use instead of one starting at `scenario.clock.start` (or the real time). */
  clock?: SandboxClock;
  /** Where the world's events are delivered (the local host's Event Grid endpoint). Omitted: raised, not delivered. */
  deliver?: EventDeliveryTarget;
  /** Source of randomness for duplicate deliveries. Omitted: seeded from `scenario.delivery.seed`. */
  random?: () => number;
  /** Where the action group of the scenario's alert rules posts (the app's alert webhook). Omitted: recorded, not sent. */
  alertTarget?: AlertDeliveryTarget;
}

/** One request an SDK client sent through `sandbox.httpClient` (loopback excepted): never a body. */
export interface SandboxRequestRecord extends RoutedRequest {
  /** Sandbox time of the request. */
  at: string;
}

/** The request log keeps the most recent requests only: a long `npm start` must not grow without bound. */
const MAX_REQUEST_LOG = 100_000;

export interface AdvanceResult {
  now: string;
  /** The events the world raised while the clock moved, in time order. */
  raised: RaisedEvent[];
}

export interface Sandbox {
  /** Pass as `httpClient` in every SDK client's options. */
  readonly httpClient: HttpClient;
  /** Pass as the credential of every SDK client. */
  readonly credential: SandboxCredential;
  readonly clock: SandboxClock;
  /** The validated scenario, without any secret value. */
  readonly scenario: ResolvedScenario;
  readonly keyVault: {
    /** `https://{vault}.vault.azure.net` */
    vaultUrl(vault: string): string;
    /**
     * Creates a secret version as a PUT would (raising SecretNewVersionCreated); returns its version id.
     * Throws like the PUT for a certificate's secret (403 `SecretManagedByKeyVault`) or a vault not in the scenario.
     */
    setSecret(
      vault: string,
      name: string,
      value: string,
      options?: { contentType?: string; tags?: Record<string, string>; attributes?: SecretAttributesInput },
    ): string;
    /**
     * Requests the Key Vault emulation received (method, path, authenticated, status, machine time);
     * never bodies. Throttled requests (429 `Throttled`, scenario `keyVault.throttling`) included.
     */
    requests(): KeyVaultRequestRecord[];
  };
  readonly eventGrid: {
    /** Events the app published to Event Grid topics. */
    published(): PublishedEvent[];
    /** World events dead-lettered after their last delivery attempt. */
    undelivered(): UndeliveredEvent[];
    /** Runs the subscription validation handshake against the delivery target (as Event Grid does on creation). */
    validateSubscriptions(): Promise<SubscriptionValidation[]>;
  };
  /** Azure Monitor: metrics (metrics:getBatch) and Log Analytics queries, and how to drive them. */
  readonly monitor: MonitorSandbox;
  /** The scenario's alert rules (state) and their action group's deliveries to the app; its load drives their metrics. */
  readonly alerts: SandboxAlerting;
  /** Events the world raised (Event Grid schema). */
  events(): RaisedEvent[];
  /** Every delivery attempt of a raised event to a subscription. */
  deliveries(): DeliveryAttempt[];
  /** Requests that landed in the webhook sink (Teams / generic webhooks). */
  webhooks(): WebhookRecord[];
  /**
   * Every request that went through `httpClient` to a sandbox service or the sink, in order (method,
   * host, path, service, status, sandbox time; never a body, a header or a query): how many remote
   * calls an operation made. The most recent 100 000 are kept.
   */
  requests(): SandboxRequestRecord[];
  readonly arm: {
    /** `https://management.azure.com`: pass as the ARM clients' `endpoint` (the default one already is). */
    readonly endpoint: string;
    readonly subscriptionId: string;
  };
  /**
   * Per simulated consumer, every interval (sandbox time) during which it held a key its resource no
   * longer accepted, and the totals. Zero downtime is `downtime().intervals === 0`, not `totalMs === 0`:
   * an interval opened at this very instant (by a run's last step) is open (`open`) and lasts 0 ms yet.
   */
  downtime(): DowntimeReport;
  /** The simulated consumers: the Key Vault versions they hold (never values), their rolls and reloads. */
  consumers(): ConsumerView[];
  /** The callbacks the sandbox sent for webhook consumers (callback URL answers). */
  webhookCallbacks(): WebhookCallbackRecord[];
  /** The estate without any secret value. */
  estate(): SandboxEstate;
  /**
   * Moves the clock (`{ days, hours, minutes, seconds }` or `{ to }`) and waits for the deliveries.
   * Advances run one after the other; each is validated when its turn comes, so a `{ to }` that an
   * earlier advance has overtaken rejects with a `RangeError` (bad input), as does any invalid request.
   */
  advance(by: AdvanceRequest): Promise<AdvanceResult>;
  /** Fires what is already due now (e.g. seeded secrets inside their 30-day window) and waits for deliveries. */
  settle(): Promise<AdvanceResult>;
  /** Waits until every queued delivery has finished. */
  idle(): Promise<void>;
  /** Serves the inspection API under `/sandbox/`; resolves false for any other path. */
  handleHttp(req: IncomingMessage, res: ServerResponse): Promise<boolean>;
  /** The Service Bus broker's inspection, served under `/sandbox/servicebus` once attached. */
  readonly serviceBus: ServiceBusInspector | undefined;
  /**
   * Attaches (or, with undefined, detaches) a started broker's inspection: see
   * `startSandboxServiceBus`. `idle`, when given, is awaited after every move of the clock (as the
   * Event Grid deliveries are): what the move set off on the broker (scheduled messages enqueued,
   * consumers failing them, dead letters taken by the app) has happened when the move returns.
   */
  attachServiceBus(inspector: ServiceBusInspector | undefined, idle?: () => Promise<void>): void;
}

export interface SandboxEstate {
  now: string;
  azure: ResolvedScenario['azure'];
  keyVault: { vaults: ReturnType<KeyVaultStore['describe']> };
  /** Resource Manager resources, their key names and regenerations; never a key value. */
  arm: ArmEstate;
  eventGrid: { subscriptions: ResolvedScenario['eventGrid']['subscriptions'] };
  delivery: ResolvedScenario['delivery'];
  monitor: ReturnType<MonitorSandbox['describe']>;
}

const DAY_MS = 24 * 60 * 60 * 1000;

/** A small seeded PRNG (mulberry32): duplicate deliveries are reproducible run to run. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Builds a sandbox from a scenario. Seeded secrets are created at the clock's start without
 * raising `SecretNewVersionCreated` (they exist before the story begins); their expiry events
 * are raised when the clock reaches them (or at the next move if they are already due).
 */
export function createSandbox(options: CreateSandboxOptions = {}): Sandbox {
  const scenario = resolveScenario(options.scenario ?? {}, 'scenario');
  const clock: SandboxClock = options.clock ?? createSandboxClock(scenario.clock.start ?? new Date());
  const credential = createSandboxCredential();
  const random = options.random ?? seededRandom(scenario.delivery.seed);
  const bus = new EventBus(scenario, clock, options.deliver, random);
  const store = new KeyVaultStore(clock, bus, scenario.azure.subscriptionId, scenario.seed);
  clock.addTicker(store);
  clock.onAfterMove(() => bus.idle());
  const arm = createArmWorld({ scenario, clock, credential, vault: store });

  seed(store, scenario, clock.now().getTime(), arm);

  const keyVault = new KeyVaultEmulator(
    store,
    credential,
    scenario.azure.tenantId,
    scenario.keyVault.throttling ? new VaultThrottle(scenario.keyVault.throttling) : undefined,
  );
  const eventGridSink = new EventGridSink(clock, credential);
  const webhookSink = new WebhookSink(clock);
  const monitor = createMonitor(scenario.monitor, clock, credential, scenario.azure);
  // Metric sources (e.g. the broker's entity counts) are sampled wherever the world stops.
  clock.onAfterMove(async () => monitor.sample());
  const requestLog: SandboxRequestRecord[] = [];
  const httpClient = createRoutingHttpClient(
    [keyVault, eventGridSink, ...monitor.emulators, ...arm.services],
    webhookSink,
    (request) => {
      if (requestLog.length >= MAX_REQUEST_LOG) requestLog.splice(0, requestLog.length - MAX_REQUEST_LOG + 1);
      requestLog.push({ ...request, at: clock.now().toISOString() });
    },
  );
  // Consumers read their secrets once the vault is seeded; webhook callbacks go through the router.
  arm.start(() => httpClient);
  const alerts = createAlerting({
    spec: scenario.alerting,
    clock,
    store: monitor.store,
    arm,
    seed: scenario.seed,
    random: seededRandom(scenario.alerting.actionGroup.seed),
    target: options.alertTarget,
  });

  const estate = (): SandboxEstate => ({
    now: clock.now().toISOString(),
    azure: { ...scenario.azure },
    keyVault: { vaults: store.describe() },
    arm: arm.describe(),
    eventGrid: { subscriptions: structuredClone(scenario.eventGrid.subscriptions) },
    delivery: { ...scenario.delivery },
    monitor: monitor.api.describe(),
  });

  const move = async (work: () => Promise<unknown>): Promise<AdvanceResult> => {
    // What changed while the clock stood still changed at this instant, not at the next stop.
    monitor.sample();
    const before = bus.events().length;
    await work();
    await bus.idle();
    await serviceBusIdle?.();
    return { now: clock.now().toISOString(), raised: bus.events().slice(before) };
  };

  // One move at a time: each advance validates against, and reports the events of, its own move.
  let moves: Promise<unknown> = Promise.resolve();
  const serially = <T>(work: () => Promise<T>): Promise<T> => {
    const next = moves.then(work, work);
    moves = next.catch(() => undefined);
    return next;
  };

  let serviceBus: ServiceBusInspector | undefined;
  let serviceBusIdle: (() => Promise<void>) | undefined;
  const sandbox: Sandbox = {
    httpClient,
    credential,
    clock,
    // The seeded values were needed once, to seed: the scenario others can read holds none.
    scenario: withoutSecretValues(scenario),
    keyVault: {
      vaultUrl: (vault) => KeyVaultStore.vaultUrl(vault),
      setSecret(vault, name, value, opts = {}) {
        return store.setSecret(vault, name, { value, ...opts }).version;
      },
      requests: () => keyVault.requests(),
    },
    eventGrid: {
      published: () => eventGridSink.published(),
      undelivered: () => bus.undelivered(),
      validateSubscriptions: () => bus.validateSubscriptions(),
    },
    monitor: monitor.api,
    alerts,
    events: () => bus.events(),
    deliveries: () => bus.deliveries(),
    webhooks: () => webhookSink.received(),
    requests: () => requestLog.map((r) => ({ ...r })),
    arm: { endpoint: 'https://management.azure.com', subscriptionId: scenario.azure.subscriptionId },
    downtime: () => arm.downtime(),
    consumers: () => arm.consumers(),
    webhookCallbacks: () => arm.webhookCallbacks(),
    estate,
    advance(by) {
      // Validated when its turn comes, not when asked: a `{ to }` queued behind another advance
      // must be checked against the time that advance leaves, not the time before it.
      return serially(() => {
        const parsed = parseAdvance(by, clock.now());
        if (!parsed.ok) throw new RangeError(parsed.error);
        return move(() => ('to' in parsed ? clock.set(parsed.to) : clock.advance(parsed.ms)));
      });
    },
    settle: () => serially(() => move(() => clock.settle())),
    idle: () => bus.idle(),
    handleHttp: (req, res) => handleInspectionHttp(sandbox, req, res),
    get serviceBus() {
      return serviceBus;
    },
    attachServiceBus(inspector, idle) {
      serviceBus = inspector;
      serviceBusIdle = inspector ? idle : undefined;
    },
  };
  return sandbox;
}

function seed(store: KeyVaultStore, scenario: ResolvedScenario, startMs: number, arm: ArmWorld): void {
  const toEpoch = (spec: { at: string } | { inDays: number } | undefined): number | undefined => {
    if (spec === undefined) return undefined;
    const ms = 'at' in spec ? Date.parse(spec.at) : startMs + spec.inDays * DAY_MS;
    return Math.floor(ms / 1000);
  };
  for (const vaultSpec of scenario.keyVault.vaults) {
    store.addVault(vaultSpec.name, vaultSpec.resourceGroup);
    for (const secret of vaultSpec.secrets) {
      store.seedSecret(
        vaultSpec.name,
        secret.name,
        {
          // Generated values are never printed: they exist only in the store.
          value:
            secret.value ??
            (secret.valueFrom ? arm.valueFor(secret.valueFrom) : randomBytes(32).toString('base64')),
          contentType: secret.contentType,
          tags: secret.tags,
          attributes: {
            enabled: secret.enabled,
            nbf: toEpoch(secret.notBefore),
            exp: toEpoch(secret.expires),
          },
        },
        { certificate: secret.certificate },
      );
    }
  }
}

/**
 * The app on the local host, on the sandbox by default: what `npm start` and the end-to-end tests
 * run. Creates the sandbox from a scenario, points the app's platform at it (credential, in-process
 * HTTP client, clock), starts the local host with the app's real registrations, mounts the sandbox's
 * inspection view under /sandbox/, and has the sandbox deliver its Event Grid events to the host's
 * webhook endpoint as Azure would.
 *
 * The app may be the source (`src/main.ts`, loaded through tsx / vitest) or the built bundle
 * (`dist/main.js`, what is deployed): the platform override is process-wide (see
 * `setPlatformOverride`), so the bundle's own copy of the platform module sees it too.
 */
import { isAbsolute, resolve } from 'node:path';
import { ACTION_GROUP_APP_ID, ROLES } from '../lib/app/auth';
import { resetDeps } from '../lib/app/deps';
import { setPlatformOverride } from '../lib/azure/platform';
import { loadPolicy } from '../lib/config/policy';
import { policyPathFrom } from '../lib/config/settings';
import type { DeveloperIdentity } from './host/builtInAuth';
import { type KeySettings, keySettingsFromEnv } from './host/keys';
import { consoleHostLogger, type RunningLocalHost, startLocalHost } from './host/localHost';
import { listenerFactories } from './host/triggers';
import type { HostLogger } from './host/types';
import { createSandbox, loadScenario, type Sandbox, type Scenario } from './sandbox';
import { type SandboxServiceBus, startSandboxServiceBus } from './sandbox/servicebus';

export const DEFAULT_SCENARIO = 'sandbox/default.scenario.yaml';
const EVENT_GRID_TIMEOUT_MS = 30_000;

/** App settings the sandbox estate needs when they are not given (none of them is a real credential). */
export const SANDBOX_SETTINGS: Record<string, string> = {
  STAMPKEEPER_ENVIRONMENT: 'sandbox',
  STAMPKEEPER_EVENTGRID_TOPIC_ENDPOINT:
    'https://stampkeeper-notify.westeurope-1.eventgrid.azure.net/api/events',
  // Shaped like a Teams incoming-webhook URL, whose path segment after IncomingWebhook is the credential.
  TEAMS_WEBHOOK_URL:
    'https://contoso.webhook.office.com/webhookb2/00000000-0000-0000-0000-000000000000@00000000-0000-0000-0000-000000000001/IncomingWebhook/0sandboxwebhookcredential0/00000000-0000-0000-0000-000000000002',
  // The pipeline the sandbox's legacy-stamp consumer rolls through (its webhook URL is a credential).
  LEGACY_STAMP_ROLL_WEBHOOK_URL: 'https://deploy.contoso.example/hooks/legacy-stamp',
  // The health URLs the scenario's consumers serve: the proof a revoke waits for (docs/policy.md).
  ORDERS_WORKER_HEALTH_URL: 'https://orders-worker.stamp-weu.contoso.example/healthz',
  STAMPKEEPER_JOBS_HEALTH_URL: 'https://jobs.stamp-weu.contoso.example/healthz',
  REPORTS_BATCH_HEALTH_URL: 'https://reports-batch.stamp-weu.contoso.example/healthz',
  // The dead-letter triggers' connection (policy deadLetters[].connection): the sandbox broker's
  // own connection string replaces this placeholder when the broker starts.
  STAMPKEEPER_SERVICEBUS:
    'Endpoint=sb://127.0.0.1:5672/;SharedAccessKeyName=sandbox;SharedAccessKey=c2FuZGJveC1wbGFjZWhvbGRlcg==',
};

/**
 * What built-in authentication lets through without a token in Azure (`globalValidation.excludedPaths`
 * in infra/modules/functionApp.bicep; the consistency test holds the two equal): the anonymous
 * health probe, Event Grid's `AzureFunction` delivery to the runtime's webhook, which the
 * `eventgrid_extension` system key protects, and the callbacks of webhook rolls, which their
 * one-time token authenticates.
 */
export const BUILT_IN_AUTH_EXCLUDED_PATHS = [
  '/api/health',
  '/runtime/webhooks/eventgrid',
  '/api/rollcallbacks',
];

/** Who a request without a token is on `npm start`: the developer, with every operations role. */
export const DEVELOPER_CALLER: DeveloperIdentity = {
  name: 'developer@localhost',
  roles: [ROLES.read, ROLES.execute, ROLES.approve],
};

export interface LocalAppOptions {
  /** Project root (host.json, src/main.ts, the scenario). Default: the current directory. */
  rootDir?: string;
  /** The app's entry module (relative to `rootDir`): `src/main.ts` (the default) or a built `main.js`. */
  appEntry?: string;
  /**
   * The folder of the app as deployed, when it is not `rootDir` (a build output such as `dist/`):
   * the host reads its host.json there, and the app gets it as `AzureWebJobsScriptRoot` (as the
   * Functions host sets it), so it loads the policy deployed with it.
   */
  appRoot?: string;
  port?: number;
  host?: string;
  /** App settings (`process.env` for the app while it runs). */
  env?: Record<string, string>;
  /** `false` runs against real Azure endpoints (az login); default: the sandbox. */
  sandbox?: false | { scenarioPath?: string; scenario?: Scenario; random?: () => number };
  logger?: HostLogger;
  startTimers?: boolean;
  /**
   * Built-in authentication, emulated as in Azure (see src/local/host/builtInAuth.ts): on by
   * default, with requests that carry no token acting as `DEVELOPER_CALLER`. `{ defaultCaller:
   * false }` requires a token as Azure does (401 without one); `false` turns the emulation off
   * (then, as in an app without built-in authentication, every authorized endpoint refuses).
   */
  auth?: false | { defaultCaller?: DeveloperIdentity | false };
}

export interface RunningLocalApp {
  url: string;
  host: RunningLocalHost;
  sandbox?: Sandbox;
  /** The sandbox's Service Bus broker, when the scenario has a `serviceBus` section. */
  serviceBus?: SandboxServiceBus;
  stop(): Promise<void>;
}

/** The setting the policy's dead-letter triggers use by default (`deadLetters[].connection`). */
export const SANDBOX_SERVICE_BUS_CONNECTION = 'STAMPKEEPER_SERVICEBUS';
/** How long start-up waits for the scenario's messages to be worked and their dead letters archived. */
const SERVICE_BUS_SETTLE_MS = 20_000;

export async function startLocalApp(options: LocalAppOptions = {}): Promise<RunningLocalApp> {
  const rootDir = options.rootDir ?? process.cwd();
  const logger = options.logger ?? consoleHostLogger;
  let hostUrl: string | undefined;
  let eventGridCode: string | undefined;
  let alertsCode: string | undefined;
  let adminKey: string | undefined;
  let sandbox: Sandbox | undefined;
  let serviceBus: SandboxServiceBus | undefined;
  let hostForSettle: RunningLocalHost | undefined;
  const env = { ...options.env };

  if (options.sandbox !== false) {
    const spec = options.sandbox ?? {};
    const scenario =
      spec.scenario ?? (await loadScenario(resolve(rootDir, spec.scenarioPath ?? DEFAULT_SCENARIO)));
    sandbox = createSandbox({
      scenario,
      random: spec.random,
      deliver: {
        async post(functionName, body, headers, attempt) {
          if (!hostUrl) return { status: 503 };
          // A real subscription's endpoint URL carries the eventgrid_extension system key (`code=`).
          const code = eventGridCode ? `&code=${encodeURIComponent(eventGridCode)}` : '';
          const response = await fetch(
            `${hostUrl}/runtime/webhooks/eventgrid?functionName=${encodeURIComponent(functionName)}${code}`,
            // Event Grid waits 30 s for a webhook, then counts the attempt as failed; the sandbox
            // aborts an attempt it gave up on.
            {
              method: 'POST',
              body,
              headers,
              signal: attempt?.abortSignal ?? AbortSignal.timeout(EVENT_GRID_TIMEOUT_MS),
            },
          );
          return { status: response.status, body: await response.text() };
        },
      },
    });
    // The action group's secure webhook: the alert intake, its function key in the URI and a token
    // of Azure Monitor's service principal holding ActionGroupsSecureWebhook, as in Azure (the
    // local host mints it: docs/local-host.md).
    let token: { value: string | undefined; until: number } | undefined;
    const actionGroupToken = async (): Promise<string | undefined> => {
      if (token && token.until > Date.now()) return token.value;
      const response = await fetch(`${hostUrl}/admin/token`, {
        method: 'POST',
        body: JSON.stringify({ app: ACTION_GROUP_APP_ID, roles: [ROLES.alertDelivery], minutes: 60 }),
        headers: { 'content-type': 'application/json', ...(adminKey ? { 'x-functions-key': adminKey } : {}) },
      });
      // No built-in authentication emulated (404): the webhook goes without a token.
      const value = response.ok ? ((await response.json()) as { token: string }).token : undefined;
      token = { value, until: Date.now() + 50 * 60_000 };
      return value;
    };
    sandbox.alerts.setTarget({
      async post(body, signal) {
        if (!hostUrl) return { status: 503 };
        const code = alertsCode ? `?code=${encodeURIComponent(alertsCode)}` : '';
        const bearer = await actionGroupToken();
        const response = await fetch(`${hostUrl}/api/alerts${code}`, {
          method: 'POST',
          body,
          headers: {
            'content-type': 'application/json',
            ...(bearer ? { authorization: `Bearer ${bearer}` } : {}),
          },
          signal,
        });
        return { status: response.status, body: await response.text() };
      },
    });
    setPlatformOverride({
      credential: sandbox.credential,
      httpClient: sandbox.httpClient,
      webhookClient: sandbox.httpClient,
      clock: sandbox.clock,
      kind: 'sandbox',
    });
    const serviceBusSection =
      sandbox.scenario.serviceBus ??
      (await policyServiceBusSection(
        { ...process.env, ...env },
        options.appRoot === undefined ? rootDir : resolve(rootDir, options.appRoot),
      ));
    if (serviceBusSection) {
      serviceBus = await startSandboxServiceBus({
        scenario: serviceBusSection,
        clock: sandbox.clock,
      });
      const started = serviceBus;
      // A move of the sandbox clock returns once the broker and the app's triggers are quiet again.
      sandbox.attachServiceBus(serviceBus.inspector, async () => {
        if (hostForSettle) await serviceBusSettled(started, hostForSettle, logger);
      });
      wireServiceBusMetrics(sandbox, serviceBus);
      const name = SANDBOX_SERVICE_BUS_CONNECTION;
      if (
        !env[name]?.trim() &&
        !process.env[name]?.trim() &&
        !process.env[`${name}__fullyQualifiedNamespace`]?.trim()
      )
        env[name] = serviceBus.connectionString;
    }
    // Sandbox defaults only fill settings nobody gave (options, local.settings.json, the shell).
    for (const [name, value] of Object.entries(SANDBOX_SETTINGS)) {
      if (!env[name]?.trim() && !process.env[name]?.trim()) env[name] = value;
    }
  } else {
    // Azure's platform, and a new one: deps a previous app built (in any copy of the app) are rebuilt.
    setPlatformOverride(undefined);
  }
  resetDeps();
  const appRoot = options.appRoot === undefined ? undefined : resolve(rootDir, options.appRoot);
  if (appRoot && !env.AzureWebJobsScriptRoot) env.AzureWebJobsScriptRoot = appRoot;
  const appEntry =
    options.appEntry === undefined || isAbsolute(options.appEntry)
      ? options.appEntry
      : resolve(rootDir, options.appEntry);

  let host: RunningLocalHost;
  try {
    host = await startLocalHost({
      appEntry: appEntry ?? (appRoot ? resolve(rootDir, 'src/main.ts') : undefined),
      rootDir: appRoot ?? rootDir,
      port: options.port,
      host: options.host,
      env,
      logger,
      startTimers: options.startTimers,
      builtInAuth:
        options.auth === false
          ? undefined
          : {
              excludedPaths: BUILT_IN_AUTH_EXCLUDED_PATHS,
              defaultCaller:
                options.auth?.defaultCaller === false
                  ? undefined
                  : (options.auth?.defaultCaller ?? DEVELOPER_CALLER),
            },
      listenerFactories,
      mounts: sandbox ? [(req, res) => sandbox!.handleHttp(req, res)] : [],
    });
  } catch (error) {
    setPlatformOverride(undefined);
    await serviceBus?.stop();
    throw error;
  }
  // The host has validated the key settings (with the app's env applied) by now.
  const keys = keySettingsFromEnv(process.env);
  eventGridCode = sandboxDeliveryKey(keys);
  alertsCode = keys.required ? (keys.functionKey ?? keys.masterKey) : undefined;
  adminKey = keys.required ? keys.masterKey : undefined;
  hostUrl = host.url;
  hostForSettle = host;
  // Secrets seeded inside their 30-day window raise their events now, as Azure would have already.
  if (sandbox) await sandbox.settle();
  // The scenario's messages are worked, and what dead-lettered is archived, before the first request.
  if (serviceBus) await serviceBusSettled(serviceBus, host, logger);

  return {
    url: host.url,
    host,
    sandbox,
    ...(serviceBus ? { serviceBus } : {}),
    async stop() {
      hostUrl = undefined;
      hostForSettle = undefined;
      await host.stop();
      // After the host's listeners: they settle their messages on the broker's links first.
      await serviceBus?.stop();
      sandbox?.attachServiceBus(undefined);
      setPlatformOverride(undefined);
      resetDeps();
    },
  };
}

/**
 * A broker section for a scenario without one: the queues and topic subscriptions the policy's
 * dead-letter entities name on the sandbox connection, empty, so that the app's triggers have
 * their entities whatever the scenario (`--scenario` files written before dead letters).
 * Undefined when the policy names none or cannot be read (the app then reports its own error).
 */
async function policyServiceBusSection(
  env: NodeJS.ProcessEnv,
  appRoot: string,
): Promise<Scenario['serviceBus'] | undefined> {
  const policy = await loadPolicy(policyPathFrom(env, appRoot)).catch(() => undefined);
  const entities = (policy?.deadLetters ?? []).filter((e) => e.connection === SANDBOX_SERVICE_BUS_CONNECTION);
  if (entities.length === 0) return undefined;
  const queues = new Set<string>();
  const topics = new Map<string, Set<string>>();
  for (const entity of entities) {
    if ('queue' in entity.source) queues.add(entity.source.queue);
    else {
      const subscriptions = topics.get(entity.source.topic) ?? new Set<string>();
      subscriptions.add(entity.source.subscription);
      for (const other of entity.topicSubscriptions) subscriptions.add(other);
      topics.set(entity.source.topic, subscriptions);
    }
  }
  return {
    tier: 'standard',
    consumers: [],
    entities: [
      ...[...queues].map((name) => ({ name })),
      ...[...topics].map(([name, subscriptions]) => ({
        name,
        type: 'topic',
        subscriptions: [...subscriptions],
      })),
    ],
  } as Scenario['serviceBus'];
}

/**
 * The broker's per-entity counts as the namespace metrics Azure Monitor serves
 * (`DeadletteredMessages`, `ActiveMessages`, dimension `EntityName`: a queue, or a topic summing
 * its subscriptions), for every Service Bus namespace of the scenario's `monitor` section whose
 * metric definitions name them and that gives no series of its own for the metric.
 */
function wireServiceBusMetrics(sandbox: Sandbox, serviceBus: SandboxServiceBus): void {
  const namespace = 'microsoft.servicebus/namespaces';
  const definitions = sandbox.scenario.monitor.metrics.definitions.find(
    (d) => d.namespace.toLowerCase() === namespace,
  );
  const resources = sandbox.scenario.monitor.metrics.resources.filter(
    (r) => r.namespace.toLowerCase() === namespace,
  );
  const counts = (pick: 'deadLetter' | 'active') => () => {
    const byEntity = new Map<string, number>();
    for (const path of serviceBus.broker.entities.paths()) {
      const entity = path.split('/')[0]!;
      byEntity.set(entity, (byEntity.get(entity) ?? 0) + serviceBus.broker.entities.get(path).counts()[pick]);
    }
    return [...byEntity].map(([name, value]) => ({ dimensions: { EntityName: name }, value }));
  };
  for (const [metric, pick] of [
    ['DeadletteredMessages', 'deadLetter'],
    ['ActiveMessages', 'active'],
  ] as const) {
    if (!definitions?.metrics.some((m) => m.name.toLowerCase() === metric.toLowerCase())) continue;
    for (const resource of resources) {
      // Series the scenario gives a metric stand (a story told by hand, e.g. a health gate's data).
      const given = (resource as { series?: Array<{ metric: string }> }).series ?? [];
      if (given.some((series) => series.metric.toLowerCase() === metric.toLowerCase())) continue;
      // A metric the scenario's alerting load drives (the remediation story) stays the load's.
      if (sandbox.alerts.drives(resource.id, metric)) continue;
      sandbox.monitor.metrics.setSource(resource.id, metric, counts(pick));
    }
  }
}

/**
 * Waits (bounded) until no message is locked, the simulated consumers' queues are empty and the
 * dead-letter queues the host triggers on are drained into the archive.
 */
async function serviceBusSettled(serviceBus: SandboxServiceBus, host: RunningLocalHost, logger: HostLogger) {
  const triggered = host.functions
    .filter((f) => String(f.trigger.type).toLowerCase() === 'servicebustrigger')
    .map((f) => {
      const queue = f.trigger['queueName'] as string | undefined;
      return (
        queue ?? `${String(f.trigger['topicName'])}/Subscriptions/${String(f.trigger['subscriptionName'])}`
      ).toLowerCase();
    });
  const consumed = new Set(serviceBus.consumers.map((c) => c.stats().entity.toLowerCase()));
  const quiet = () =>
    serviceBus.broker.entities.paths().every((path) => {
      const counts = serviceBus.broker.entities.get(path).counts();
      const dlq = `${path}/$deadletterqueue`.toLowerCase();
      return (
        counts.locked === 0 &&
        (!consumed.has(path.toLowerCase()) || counts.active === 0) &&
        (!triggered.includes(dlq) || counts.deadLetter === 0)
      );
    });
  const deadline = Date.now() + SERVICE_BUS_SETTLE_MS;
  while (!quiet()) {
    if (Date.now() > deadline) {
      logger.warn('The sandbox Service Bus is still busy after start-up; going on.');
      return;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * The key the sandbox's Event Grid subscription presents when the host requires keys: the
 * `eventgrid_extension` system key, as in a real subscription's endpoint URL
 * (`.../runtime/webhooks/eventgrid?functionName=<name>&code=<system key>`); the master key when no
 * system key is set (the host accepts it for the webhook too). None when keys are not required.
 */
function sandboxDeliveryKey(keys: KeySettings): string | undefined {
  if (!keys.required) return undefined;
  return keys.eventGridKey ?? keys.masterKey;
}

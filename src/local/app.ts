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
import type { DeveloperIdentity } from './host/builtInAuth';
import { type KeySettings, keySettingsFromEnv } from './host/keys';
import { consoleHostLogger, type RunningLocalHost, startLocalHost } from './host/localHost';
import { listenerFactories } from './host/triggers';
import type { HostLogger } from './host/types';
import { createSandbox, loadScenario, type Sandbox, type Scenario } from './sandbox';

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
  stop(): Promise<void>;
}

export async function startLocalApp(options: LocalAppOptions = {}): Promise<RunningLocalApp> {
  const rootDir = options.rootDir ?? process.cwd();
  const logger = options.logger ?? consoleHostLogger;
  let hostUrl: string | undefined;
  let eventGridCode: string | undefined;
  let alertsCode: string | undefined;
  let adminKey: string | undefined;
  let sandbox: Sandbox | undefined;
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
    throw error;
  }
  // The host has validated the key settings (with the app's env applied) by now.
  const keys = keySettingsFromEnv(process.env);
  eventGridCode = sandboxDeliveryKey(keys);
  alertsCode = keys.required ? (keys.functionKey ?? keys.masterKey) : undefined;
  adminKey = keys.required ? keys.masterKey : undefined;
  hostUrl = host.url;
  // Secrets seeded inside their 30-day window raise their events now, as Azure would have already.
  if (sandbox) await sandbox.settle();

  return {
    url: host.url,
    host,
    sandbox,
    async stop() {
      hostUrl = undefined;
      await host.stop();
      setPlatformOverride(undefined);
      resetDeps();
    },
  };
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

/**
 * The app on the local host, on the sandbox by default: what `npm start` and the end-to-end tests
 * run. Creates the sandbox from a scenario, points the app's platform at it (credential, in-process
 * HTTP client, clock), starts the local host with the app's real registrations, mounts the sandbox's
 * inspection view under /sandbox/, and has the sandbox deliver its Event Grid events to the host's
 * webhook endpoint as Azure would.
 */
import { join } from 'node:path';
import { resetDeps } from '../lib/app/deps';
import { setPlatformOverride } from '../lib/azure/platform';
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
};

export interface LocalAppOptions {
  /** Project root (host.json, src/main.ts, the scenario). Default: the current directory. */
  rootDir?: string;
  /** The app's entry module. Default: src/main.ts. */
  appEntry?: string;
  port?: number;
  host?: string;
  /** App settings (`process.env` for the app while it runs). */
  env?: Record<string, string>;
  /** `false` runs against real Azure endpoints (az login); default: the sandbox. */
  sandbox?: false | { scenarioPath?: string; scenario?: Scenario; random?: () => number };
  logger?: HostLogger;
  startTimers?: boolean;
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
  let sandbox: Sandbox | undefined;
  const env = { ...options.env };

  if (options.sandbox !== false) {
    const spec = options.sandbox ?? {};
    const scenario =
      spec.scenario ?? (await loadScenario(join(rootDir, spec.scenarioPath ?? DEFAULT_SCENARIO)));
    sandbox = createSandbox({
      scenario,
      random: spec.random,
      deliver: {
        async post(functionName, body, headers, attempt) {
          if (!hostUrl) return { status: 503 };
          const response = await fetch(
            `${hostUrl}/runtime/webhooks/eventgrid?functionName=${encodeURIComponent(functionName)}`,
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
  }
  resetDeps();

  let host: RunningLocalHost;
  try {
    host = await startLocalHost({
      appEntry: options.appEntry,
      rootDir,
      port: options.port,
      host: options.host,
      env,
      logger,
      startTimers: options.startTimers,
      listenerFactories,
      mounts: sandbox ? [(req, res) => sandbox!.handleHttp(req, res)] : [],
    });
  } catch (error) {
    setPlatformOverride(undefined);
    throw error;
  }
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

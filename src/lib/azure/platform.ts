import type { TokenCredential } from '@azure/core-auth';
import { createDefaultHttpClient, type HttpClient } from '@azure/core-rest-pipeline';
import { DefaultAzureCredential } from '@azure/identity';
import type { Clock } from '../ports/clock';
import { systemClock } from '../ports/clock';

/**
 * What every Azure SDK client of the app is built with. In Azure: `DefaultAzureCredential`
 * (managed identity) and the SDK's own HTTP client. Locally on the sandbox, the local host sets an
 * override before the app loads, so that the very same clients talk to the in-process emulation.
 */
export interface Platform {
  credential: TokenCredential;
  /** `undefined` = the SDK's default transport. */
  httpClient?: HttpClient;
  /** HTTP client for plain webhooks (Teams, generic): the sandbox captures them. */
  webhookClient: HttpClient;
  clock: Clock;
  /** A short label for logs and `/api/health`: `azure` or `sandbox`. */
  kind: string;
}

let override: Platform | undefined;

/** Used by the local host (and tests) to run the app against the sandbox. Call before the app builds its deps. */
export function setPlatformOverride(platform: Platform | undefined): void {
  override = platform;
}

/** The platform to build clients with: the override if one is set, Azure otherwise. */
export function resolvePlatform(options: { managedIdentityClientId?: string } = {}): Platform {
  if (override) return override;
  return {
    credential: new DefaultAzureCredential(
      options.managedIdentityClientId ? { managedIdentityClientId: options.managedIdentityClientId } : {},
    ),
    webhookClient: createDefaultHttpClient(),
    clock: systemClock,
    kind: 'azure',
  };
}

import type { AccessToken, GetTokenOptions, TokenCredential } from '@azure/core-auth';
import type { HttpClient, PipelineRequest, PipelineResponse } from '@azure/core-rest-pipeline';
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

/**
 * The platform seam, and the only one: one slot per process, on `globalThis` under
 * `Symbol.for('stampkeeper.platform')`. It is process-wide rather than module state because the
 * module exists in several copies in one process: the local host runs from source (tsx) while the
 * app it serves may be the esbuild bundle `dist/main.js`, which carries its own copy of this file.
 * Both copies find the same slot through the global symbol registry.
 *
 * Only code in the process can reach it, through `setPlatformOverride`: no setting, environment
 * variable or payload is read here, so input cannot point the app at another platform.
 */
const PLATFORM_SEAM = Symbol.for('stampkeeper.platform');

interface PlatformSeam {
  /** Layout of the slot; a copy of this module that finds another layout refuses it. */
  readonly layout: 1;
  override: Platform | undefined;
  /** Incremented by every `setPlatformOverride`: tells caches built on the previous platform to rebuild. */
  generation: number;
}

function seam(): PlatformSeam {
  const holder = globalThis as unknown as Record<symbol, unknown>;
  const current = holder[PLATFORM_SEAM] as Partial<PlatformSeam> | undefined;
  if (current === undefined) {
    const created: PlatformSeam = { layout: 1, override: undefined, generation: 0 };
    Object.defineProperty(holder, PLATFORM_SEAM, { value: created, enumerable: false });
    return created;
  }
  if (typeof current !== 'object' || current === null || current.layout !== 1) {
    throw new Error('The platform seam on globalThis has an unknown layout (two incompatible app builds?).');
  }
  return current as PlatformSeam;
}

/**
 * Used by the local host (and tests) to run the app against the sandbox: sets (or, with
 * `undefined`, clears) the platform of every copy of the app in this process. Call before the app
 * builds its deps; deps built on an earlier platform are rebuilt on their next use.
 */
export function setPlatformOverride(platform: Platform | undefined): void {
  const slot = seam();
  slot.override = platform;
  slot.generation += 1;
}

/** Changes whenever the override is set or cleared (see `setPlatformOverride`). */
export function platformGeneration(): number {
  return seam().generation;
}

/**
 * The platform to build clients with: the override if one is set, Azure otherwise. Azure's
 * credential (`DefaultAzureCredential`, managed identity) and HTTP client load their SDK packages
 * on their first use, not here: importing the app must not pay for them (cold start).
 */
export function resolvePlatform(options: { managedIdentityClientId?: string } = {}): Platform {
  const override = seam().override;
  if (override) return override;
  return {
    credential: new LazyDefaultAzureCredential(options.managedIdentityClientId),
    webhookClient: new LazyDefaultHttpClient(),
    clock: systemClock,
    kind: 'azure',
  };
}

/** `DefaultAzureCredential`, created (and `@azure/identity` loaded) on the first token request. */
class LazyDefaultAzureCredential implements TokenCredential {
  #credential: Promise<TokenCredential> | undefined;

  constructor(private readonly managedIdentityClientId: string | undefined) {}

  async getToken(scopes: string | string[], options?: GetTokenOptions): Promise<AccessToken | null> {
    this.#credential ??= import('@azure/identity').then(
      ({ DefaultAzureCredential }) =>
        new DefaultAzureCredential(
          this.managedIdentityClientId ? { managedIdentityClientId: this.managedIdentityClientId } : {},
        ),
    );
    const pending = this.#credential;
    try {
      return await (await pending).getToken(scopes, options);
    } catch (error) {
      // A failed load is tried again; a failed token request keeps the credential (and its cache).
      if (!(await pending.then(() => true).catch(() => false))) this.#credential = undefined;
      throw error;
    }
  }
}

/** The SDK's default HTTP client, created (and `@azure/core-rest-pipeline` loaded) on the first request. */
class LazyDefaultHttpClient implements HttpClient {
  #client: Promise<HttpClient> | undefined;

  async sendRequest(request: PipelineRequest): Promise<PipelineResponse> {
    this.#client ??= import('@azure/core-rest-pipeline').then((m) => m.createDefaultHttpClient());
    const pending = this.#client;
    pending.catch(() => {
      if (this.#client === pending) this.#client = undefined;
    });
    return (await pending).sendRequest(request);
  }
}

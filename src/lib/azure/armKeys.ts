/**
 * What the key adapters (`cosmosDbKeys.ts`, `storageKeys.ts`, `serviceBusKeys.ts`) share: reading
 * the resource ids they are given, one management client per subscription, the data-plane requests
 * that test a key, and turning listed values into `ProvidedKey`s (registered with the redactor).
 */
import type { TokenCredential } from '@azure/core-auth';
import {
  createDefaultHttpClient,
  createHttpHeaders,
  createPipelineFromOptions,
  createPipelineRequest,
  type HttpClient,
  type Pipeline,
  type PipelineResponse,
} from '@azure/core-rest-pipeline';
import { ValidationError } from '../core/errors';
import { redactText, registerSecret } from '../core/redact';
import { type KeyProviderKind, type KeySlot, keyFingerprint, type ProvidedKey } from '../ports/keys';
import { fromAzureError } from './errors';

/** What every ARM-backed adapter is built with: the platform's credential and transport. */
export interface ArmAdapterOptions {
  /** The platform's HTTP client (the sandbox's in local runs); the SDK's own when omitted. */
  httpClient?: HttpClient;
  /**
   * Milliseconds between two polls of a long-running operation (default 2000). The SDK's poller
   * ignores `Retry-After: 0` and falls back to this, so sandbox runs pass 0.
   */
  pollIntervalMs?: number;
  /** The clock that dates data-plane signatures (the machine's, as the services check): tests only. */
  authNow?: () => Date;
}

export interface ParsedArmId {
  subscriptionId: string;
  resourceGroup: string;
  /** The names along the chain, in order (`[namespace, queue, rule]`). */
  names: string[];
  /** The types along the chain, lower case (`['namespaces', 'queues', 'authorizationrules']`). */
  types: string[];
}

const SEGMENT = /^[^/?#\s]{1,260}$/;

/**
 * Reads an ARM resource id of `namespace` whose type chain is one of `shapes` (lower-case types, e.g.
 * `['databaseaccounts']`). A malformed id or another type is a `ValidationError` naming the id: bad
 * input never reaches Azure.
 */
export function parseArmId(resourceId: string, namespace: string, shapes: string[][]): ParsedArmId {
  const fail = (why: string): never => {
    throw new ValidationError(`resource id ${resourceId}: ${why}`, [why], {
      metadata: { target: resourceId },
    });
  };
  if (typeof resourceId !== 'string' || resourceId.length > 1024) fail('not a resource id');
  const parts = resourceId.split('/');
  if (parts[0] !== '' || parts.slice(1).some((p) => !SEGMENT.test(p))) fail('not a resource id');
  const [, subs, subscriptionId, rgs, resourceGroup, providers, ns, ...chain] = parts;
  if (
    subs?.toLowerCase() !== 'subscriptions' ||
    rgs?.toLowerCase() !== 'resourcegroups' ||
    providers?.toLowerCase() !== 'providers'
  ) {
    fail('expected /subscriptions/{id}/resourceGroups/{group}/providers/{namespace}/...');
  }
  if (ns?.toLowerCase() !== namespace.toLowerCase()) fail(`expected a ${namespace} resource`);
  if (chain.length % 2 !== 0) fail('expected type/name pairs after the namespace');
  const types = chain.filter((_, i) => i % 2 === 0).map((t) => t.toLowerCase());
  const names = chain.filter((_, i) => i % 2 === 1);
  if (!shapes.some((shape) => shape.length === types.length && shape.every((t, i) => t === types[i]))) {
    fail(`expected one of ${shapes.map((s) => `${namespace}/${s.join('/')}`).join(', ')}`);
  }
  return { subscriptionId: subscriptionId!, resourceGroup: resourceGroup!, names, types };
}

/** One SDK client per subscription, built on first use. */
export class ClientsBySubscription<T> {
  private readonly clients = new Map<string, T>();
  constructor(private readonly build: (subscriptionId: string) => T) {}
  get(subscriptionId: string): T {
    const key = subscriptionId.toLowerCase();
    let client = this.clients.get(key);
    if (!client) {
      client = this.build(subscriptionId);
      this.clients.set(key, client);
    }
    return client;
  }
}

/** The SDK's management client options from ours. */
export function armClientOptions(options: ArmAdapterOptions) {
  return { httpClient: options.httpClient, retryOptions: { maxRetries: 2 } };
}

/** A listed key as the port carries it; the value is registered with the redactor whether or not it is returned. */
export function providedKey(
  slot: KeySlot,
  name: string,
  value: string | undefined,
  withValue: boolean,
  what: string,
): ProvidedKey {
  if (typeof value !== 'string' || value === '') {
    throw new ValidationError(`${what}: the listing has no ${name}`, [`no ${name}`]);
  }
  registerSecret(value);
  return { slot, name, fingerprint: keyFingerprint(value), ...(withValue ? { value } : {}) };
}

/** Why a management call failed, in the project's error types (`target` is the resource id). */
export function armError(error: unknown, doing: string, resourceId: string) {
  return fromAzureError(error, doing, { target: resourceId });
}

/** The same, for the key providers. */
export const keyError = armError;

/** Sends data-plane test requests through the platform's transport, with a small retry budget. */
export class DataPlaneProbe {
  private readonly pipeline: Pipeline;
  private readonly client: HttpClient;

  constructor(
    private readonly kind: KeyProviderKind,
    options: ArmAdapterOptions,
  ) {
    this.pipeline = createPipelineFromOptions({ retryOptions: { maxRetries: 2 } });
    this.client = options.httpClient ?? createDefaultHttpClient();
  }

  async get(
    url: string,
    headers: Record<string, string>,
    abortSignal?: AbortSignal,
  ): Promise<PipelineResponse> {
    const request = createPipelineRequest({
      url,
      method: 'GET',
      headers: createHttpHeaders(headers),
      abortSignal,
    });
    return this.pipeline.sendRequest(this.client, request);
  }

  /** `NNN first line of the answer`, redacted and short, for `KeyTestResult.detail`. */
  describe(response: PipelineResponse, what: string): string {
    if (response.status >= 200 && response.status < 300) return `${response.status} ${what}`;
    const text =
      redactText(response.bodyAsText ?? '')
        .split(/\r?\n/)[0]
        ?.slice(0, 200) ?? '';
    return `${response.status} ${text}`.trim();
  }

  /** An answer that says nothing about the key (throttled, outage...) becomes a thrown project error. */
  inconclusive(response: PipelineResponse, doing: string, resourceId: string): Error {
    return fromAzureError(
      {
        statusCode: response.status,
        message: redactText(response.bodyAsText ?? '').slice(0, 300),
        name: 'RestError',
      },
      `${doing} (${this.kind})`,
      { target: resourceId },
    );
  }
}

/** The platform's credential is what the management clients authenticate with. */
export type ArmCredential = TokenCredential;

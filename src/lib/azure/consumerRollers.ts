/**
 * What the consumer rollers share: the health check that verifies a roll, handles, and the registry
 * that finds the roller of a consumer's kind.
 */
import {
  createDefaultHttpClient,
  createHttpHeaders,
  createPipelineRequest,
  type HttpClient,
} from '@azure/core-rest-pipeline';
import { ConfigurationError, ValidationError } from '../core/errors';
import { redactText } from '../core/redact';
import type { Clock } from '../ports/clock';
import type {
  Consumer,
  ConsumerKind,
  ConsumerRoller,
  RollContext,
  RollHandle,
  RollStatus,
} from '../ports/consumers';

/** Longest a health answer may take. */
const HEALTH_TIMEOUT_MS = 10_000;
/** Bytes of a health answer read: enough for a status document, not a download. */
const MAX_HEALTH_BODY = 64 * 1024;

/**
 * GETs a consumer's health URL (through the platform's plain-HTTP client: the sandbox's in local
 * runs). Healthy: a 2xx answer and, when the body lists `secretVersions` and a version is expected,
 * only that version. Anything else, a network failure included, is "not yet": the caller's deadline
 * decides when waiting becomes failure.
 */
export class HealthProbe {
  private readonly client: HttpClient;

  constructor(httpClient?: HttpClient) {
    this.client = httpClient ?? createDefaultHttpClient();
  }

  async check(
    url: string,
    expectedVersion: string | undefined,
    abortSignal?: AbortSignal,
  ): Promise<{ healthy: boolean; detail: string }> {
    let status: number;
    let text: string;
    try {
      const response = await this.client.sendRequest(
        createPipelineRequest({
          url,
          method: 'GET',
          headers: createHttpHeaders({ accept: 'application/json' }),
          timeout: HEALTH_TIMEOUT_MS,
          abortSignal,
        }),
      );
      status = response.status;
      text = (response.bodyAsText ?? '').slice(0, MAX_HEALTH_BODY);
    } catch (error) {
      return {
        healthy: false,
        detail: `health check failed: ${redactText((error as Error).message ?? String(error)).slice(0, 200)}`,
      };
    }
    if (status < 200 || status >= 300) return { healthy: false, detail: `health check answered ${status}` };
    let versions: unknown;
    try {
      versions = (JSON.parse(text) as { secretVersions?: unknown }).secretVersions;
    } catch {
      versions = undefined;
    }
    if (expectedVersion !== undefined && Array.isArray(versions)) {
      const others = versions.filter((v) => v !== expectedVersion);
      if (others.length > 0 || versions.length === 0) {
        return {
          healthy: false,
          detail: `healthy, but on versions ${versions.map(String).join(', ')} (expected ${expectedVersion})`,
        };
      }
      return { healthy: true, detail: `healthy on version ${expectedVersion}` };
    }
    return { healthy: true, detail: `health check answered ${status}` };
  }
}

/** A handle for a roll started now. */
export function handleOf(
  kind: ConsumerKind,
  consumer: Consumer,
  clock: Clock,
  ref: Record<string, string>,
): RollHandle {
  return { kind, consumer: consumer.name, startedAt: clock.now().toISOString(), ref };
}

/** The consumer's target, checked to be of the roller's kind (a mismatch is a programming or policy error). */
export function targetOf<K extends ConsumerKind>(
  consumer: Consumer,
  kind: K,
): Extract<Consumer['target'], { kind: K }> {
  if (consumer.target.kind !== kind) {
    throw new ValidationError(
      `consumer ${consumer.name}: a ${consumer.target.kind} consumer given to the ${kind} roller`,
      [`target.kind is ${consumer.target.kind}`],
    );
  }
  return consumer.target as Extract<Consumer['target'], { kind: K }>;
}

/** A finished roll is only done when the consumer's health check (if any) agrees. */
export async function verified(
  health: HealthProbe,
  consumer: Consumer,
  context: RollContext,
  doneDetail: string,
): Promise<RollStatus> {
  if (!consumer.healthUrl) return { state: 'done', detail: doneDetail };
  const result = await health.check(consumer.healthUrl, context.secretVersion, context.abortSignal);
  return result.healthy
    ? { state: 'done', detail: `${doneDetail}; ${result.detail}` }
    : { state: 'running', detail: `${doneDetail}; waiting for health: ${result.detail}` };
}

/** Checks the handle belongs to this roller and consumer. */
export function checkHandle(
  handle: RollHandle,
  kind: ConsumerKind,
  consumer: Consumer,
  refs: string[],
): void {
  const problems: string[] = [];
  if (handle.kind !== kind) problems.push(`handle.kind is ${handle.kind}, expected ${kind}`);
  if (handle.consumer !== consumer.name)
    problems.push(`handle.consumer is ${handle.consumer}, expected ${consumer.name}`);
  for (const ref of refs)
    if (typeof handle.ref?.[ref] !== 'string') problems.push(`handle.ref.${ref} is missing`);
  if (Number.isNaN(Date.parse(handle.startedAt))) problems.push('handle.startedAt is not a date');
  if (problems.length > 0)
    throw new ValidationError(`roll handle of consumer ${consumer.name} is not usable`, problems);
}

/** The rollers of every kind, found by a consumer's kind. */
export class ConsumerRollers {
  private readonly byKind = new Map<ConsumerKind, ConsumerRoller>();

  constructor(rollers: ConsumerRoller[]) {
    for (const roller of rollers) this.byKind.set(roller.kind, roller);
  }

  /** The roller of the consumer's kind; a `ConfigurationError` when none is wired. */
  for(consumer: Consumer): ConsumerRoller {
    const roller = this.byKind.get(consumer.target.kind);
    if (!roller)
      throw new ConfigurationError(
        `no roller for ${consumer.target.kind} consumers (consumer ${consumer.name})`,
      );
    return roller;
  }
}

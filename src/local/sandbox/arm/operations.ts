/**
 * Long-running ARM operations, in the shapes of the ARM RPC ("Asynchronous operations"; the
 * `Azure-AsyncOperation` / `Location` pair, `Retry-After`) and of the providers that use them:
 *
 * - the status resource (`.../locations/{loc}/operationsStatus/{id}`, what `Azure-AsyncOperation`
 *   names) always answers 200 with `{ id, name, status, startTime[, endTime][, error] }`, `status`
 *   being `InProgress` until the operation ends, then `Succeeded` / `Failed`;
 * - the result resource (`.../operationResults/{id}`, what `Location` names for a generic
 *   provider) answers 202 while the operation runs, then the operation's result (200 with a body,
 *   or 204).
 *
 * Cosmos DB's `regenerateKey` names its status resource in both headers (test/fixtures/rest/cosmosdb/
 * CosmosDBDatabaseAccountRegenerateKey.json), so a provider chooses which URL `Location` carries.
 *
 * An operation ends after `pollsBeforeDone` status reads answered `InProgress` (scenario
 * `arm.operations.pollsBeforeDone`, default 0: the first read finds it done), so that a client's
 * polling loop is exercised without tying the operation to the sandbox clock, which only moves when
 * someone moves it. Every 202 and every `InProgress` answer carries `Retry-After: 0`.
 */
import type { SandboxClock } from '../clock';
import { azureError, type SandboxReply } from '../http';
import { seededUuid } from '../ids';
import { normalizeLocation } from './resourceId';

export const ARM_HOST = 'management.azure.com';

export interface OperationOutcome {
  /**
   * What the result resource answers once the operation succeeded (default 204, no body); a function
   * answers what the resource is when the result is read.
   */
  result?: SandboxReply | (() => SandboxReply);
  /** The operation's error when it failed (`status: Failed`). */
  error?: { code: string; message: string };
}

interface OperationState {
  id: string;
  namespace: string;
  location: string;
  subscriptionId: string;
  apiVersion: string;
  startTime: string;
  endTime: string | undefined;
  pollsLeft: number;
  outcome: OperationOutcome;
  /** The status and result collections' names (a provider's own: Container Apps says `containerappOperationStatuses`). */
  collections: { status: string; result: string };
}

export interface StartedOperation {
  id: string;
  /** `https://management.azure.com/subscriptions/{sub}/providers/{ns}/locations/{loc}/operationsStatus/{id}?api-version=` */
  statusUrl: string;
  /** The same with `operationResults`. */
  resultUrl: string;
}

export class ArmOperations {
  private readonly operations = new Map<string, OperationState>();
  private count = 0;

  constructor(
    private readonly clock: SandboxClock,
    private readonly seed: string,
    private readonly pollsBeforeDone: number,
  ) {}

  /** Registers a running operation; its effect is the caller's to apply (the sandbox applies it at once). */
  start(input: {
    namespace: string;
    location: string;
    subscriptionId: string;
    apiVersion: string;
    outcome?: OperationOutcome;
    /** Default `operationsStatus` / `operationResults`. */
    collections?: { status: string; result: string };
  }): StartedOperation {
    // Ids derive from the seed and the order operations were started in: a replay gets the same ids.
    const id = seededUuid(this.seed, 'arm-operation', this.count++);
    const location = normalizeLocation(input.location);
    const state: OperationState = {
      id,
      namespace: input.namespace,
      location,
      subscriptionId: input.subscriptionId,
      apiVersion: input.apiVersion,
      startTime: this.clock.now().toISOString(),
      endTime: undefined,
      pollsLeft: this.pollsBeforeDone,
      outcome: input.outcome ?? {},
      collections: input.collections ?? { status: 'operationsStatus', result: 'operationResults' },
    };
    this.operations.set(id, state);
    return {
      id,
      statusUrl: this.url(state, state.collections.status),
      resultUrl: this.url(state, state.collections.result),
    };
  }

  private url(state: OperationState, collection: string): string {
    return `https://${ARM_HOST}/subscriptions/${state.subscriptionId}/providers/${state.namespace}/locations/${state.location}/${collection}/${state.id}?api-version=${state.apiVersion}`;
  }

  /** Answers a GET of `operationsStatus/{id}` or `operationResults/{id}`. */
  read(namespace: string, collection: string, operationId: string): SandboxReply {
    const state = this.operations.get(operationId.toLowerCase());
    const kind = collection.toLowerCase();
    if (!state || state.namespace.toLowerCase() !== namespace.toLowerCase()) {
      return azureError(404, 'NotFound', `The operation '${operationId}' was not found.`);
    }
    const isStatus = kind === state.collections.status.toLowerCase();
    const isResult = kind === state.collections.result.toLowerCase();
    if (!isStatus && !isResult)
      return azureError(404, 'NotFound', `The operation collection '${collection}' is not emulated.`);
    const running = this.advance(state);
    if (isStatus) {
      const body: Record<string, unknown> = {
        id: `/subscriptions/${state.subscriptionId}/providers/${state.namespace}/locations/${state.location}/${state.collections.status}/${state.id}`,
        name: state.id,
        status: running ? 'InProgress' : state.outcome.error ? 'Failed' : 'Succeeded',
        startTime: state.startTime,
      };
      if (!running) body.endTime = state.endTime;
      if (!running && state.outcome.error) body.error = state.outcome.error;
      return { status: 200, body, headers: running ? { 'retry-after': '0' } : undefined };
    }
    if (running) {
      return {
        status: 202,
        headers: { location: this.url(state, state.collections.result), 'retry-after': '0' },
      };
    }
    if (state.outcome.error) return { status: 400, body: { error: state.outcome.error } };
    const result = state.outcome.result;
    return typeof result === 'function' ? result() : (result ?? { status: 204 });
  }

  /** Counts one status read; true while the operation is still running. */
  private advance(state: OperationState): boolean {
    if (state.endTime !== undefined) return false;
    if (state.pollsLeft > 0) {
      state.pollsLeft -= 1;
      return true;
    }
    state.endTime = this.clock.now().toISOString();
    return false;
  }
}

import {
  createDefaultHttpClient,
  createHttpHeaders,
  createPipelineRequest,
  type HttpClient,
  type PipelineResponse,
} from '@azure/core-rest-pipeline';
import { ValidationError } from '../core/errors';
import { redactText } from '../core/redact';
import { type Clock, systemClock } from '../ports/clock';
import type { Consumer, ConsumerRoller, RollContext, RollHandle, RollStatus } from '../ports/consumers';
import { checkHandle, HealthProbe, handleOf, targetOf, verified } from './consumerRollers';
import { fromAzureError } from './errors';

const TIMEOUT_MS = 30_000;
const MAX_BODY = 64 * 1024;

/** Where a `callback` webhook's completion is recorded (the app's callback endpoint writes it). */
export interface WebhookCallbacks {
  /** What the webhook reported for this roll, or undefined while nothing arrived. */
  statusOf(handle: RollHandle): Promise<RollStatus | undefined>;
}

/** `https://host/path` of a URL, redacted: webhook URLs may carry a credential in their query. */
function shown(url: string): string {
  try {
    const u = new URL(url);
    return redactText(`${u.origin}${u.pathname}`);
  } catch {
    return '(not a URL)';
  }
}

/**
 * Rolls a consumer through a generic webhook (a pipeline, a deployment tool): POSTs
 * `{ consumer, secret: { vaultUrl, name, version }, callbackUrl? }` (names only, never a value).
 * Completion by polling: the answer is 202 (or 201) with a `Location` on the webhook's own origin,
 * GET for `{ status: Running | Succeeded | Failed, reason? }` (`Completed` and `Canceled` read as
 * done and failed). By callback: the target POSTs to `RollContext.callbackUrl`, which the app records
 * and `callbacks.statusOf` reads. A 200 / 204 answer with no `Location` means the work was done
 * synchronously. Needs no Azure permission (whatever the webhook requires is in its URL).
 */
export class WebhookRoller implements ConsumerRoller {
  readonly kind = 'webhook' as const;
  private readonly client: HttpClient;
  private readonly clock: Clock;
  private readonly health: HealthProbe;

  constructor(
    private readonly options: {
      /** The platform's plain-HTTP client (`webhookClient`). */
      httpClient?: HttpClient;
      clock?: Clock;
      callbacks?: WebhookCallbacks;
    } = {},
  ) {
    this.client = options.httpClient ?? createDefaultHttpClient();
    this.clock = options.clock ?? systemClock;
    this.health = new HealthProbe(options.httpClient);
  }

  private async send(
    url: string,
    method: 'GET' | 'POST',
    body: unknown,
    abortSignal?: AbortSignal,
  ): Promise<PipelineResponse> {
    try {
      return await this.client.sendRequest(
        createPipelineRequest({
          url,
          method,
          headers: createHttpHeaders({
            accept: 'application/json',
            ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          }),
          body: body === undefined ? undefined : JSON.stringify(body),
          timeout: TIMEOUT_MS,
          abortSignal,
        }),
      );
    } catch (error) {
      throw fromAzureError(error, `${method === 'POST' ? 'calling' : 'polling'} webhook ${shown(url)}`);
    }
  }

  private refused(response: PipelineResponse, doing: string): Error {
    return fromAzureError(
      {
        statusCode: response.status,
        name: 'RestError',
        message: redactText((response.bodyAsText ?? '').slice(0, 300)),
      },
      doing,
    );
  }

  /** POSTs the webhook once. One HTTP call. */
  async start(consumer: Consumer, context: RollContext = {}): Promise<RollHandle> {
    const target = targetOf(consumer, 'webhook');
    let url: URL;
    try {
      url = new URL(target.url);
    } catch {
      throw new ValidationError(`consumer ${consumer.name}: the webhook URL is not a URL`, ['target.url']);
    }
    if (url.protocol !== 'https:')
      throw new ValidationError(`consumer ${consumer.name}: the webhook URL must be https`, ['target.url']);
    if (target.completion === 'callback' && !context.callbackUrl) {
      throw new ValidationError(
        `consumer ${consumer.name}: a callback webhook needs the roll's callbackUrl`,
        ['context.callbackUrl'],
      );
    }
    if (target.completion === 'callback' && !this.options.callbacks) {
      throw new ValidationError(`consumer ${consumer.name}: callback webhooks need a callbacks store wired`, [
        'callbacks',
      ]);
    }
    const body = {
      consumer: consumer.name,
      ...(context.secret
        ? {
            secret: {
              ...context.secret,
              ...(context.secretVersion ? { version: context.secretVersion } : {}),
            },
          }
        : {}),
      ...(target.completion === 'callback' ? { callbackUrl: context.callbackUrl } : {}),
    };
    const response = await this.send(target.url, 'POST', body, context.abortSignal);
    if (response.status < 200 || response.status >= 300)
      throw this.refused(response, `calling webhook ${shown(target.url)}`);
    if (target.completion === 'callback')
      return handleOf(this.kind, consumer, this.clock, { completion: 'callback' });
    const location = response.headers.get('location');
    if (!location) {
      return handleOf(this.kind, consumer, this.clock, {
        completion: 'done',
        status: String(response.status),
      });
    }
    // The status URL must stay on the webhook's origin: an answer must not steer where the app connects.
    const statusUrl = new URL(location, url);
    if (statusUrl.origin !== url.origin) {
      throw this.refused(
        {
          ...response,
          status: 502,
          bodyAsText: `Location ${shown(statusUrl.toString())} is not on the webhook's origin`,
        },
        `calling webhook ${shown(target.url)}`,
      );
    }
    return handleOf(this.kind, consumer, this.clock, {
      completion: 'polling',
      statusUrl: statusUrl.toString(),
    });
  }

  /** Polling: one GET of the status URL; callback: the callbacks store. Then the health check (if any). */
  async status(consumer: Consumer, handle: RollHandle, context: RollContext = {}): Promise<RollStatus> {
    const target = targetOf(consumer, 'webhook');
    checkHandle(handle, this.kind, consumer, ['completion']);
    if (handle.ref.completion === 'done')
      return verified(this.health, consumer, context, `webhook answered ${handle.ref.status}`);
    if (handle.ref.completion === 'callback') {
      const reported = await this.options.callbacks?.statusOf(handle);
      if (!reported) return { state: 'running', detail: 'waiting for the webhook callback' };
      if (reported.state !== 'done') return reported;
      return verified(this.health, consumer, context, reported.detail);
    }
    const statusUrl = handle.ref.statusUrl;
    if (!statusUrl || new URL(statusUrl).origin !== new URL(target.url).origin) {
      throw new ValidationError(
        `roll handle of consumer ${consumer.name} has no status URL on the webhook's origin`,
        ['handle.ref.statusUrl'],
      );
    }
    const response = await this.send(statusUrl, 'GET', undefined, context.abortSignal);
    if (response.status === 404 || response.status === 410) {
      return { state: 'failed', reason: `the webhook no longer knows this run (${response.status})` };
    }
    if (response.status < 200 || response.status >= 300)
      throw this.refused(response, `polling webhook ${shown(target.url)}`);
    let answer: { status?: unknown; reason?: unknown } = {};
    try {
      answer = JSON.parse((response.bodyAsText ?? '').slice(0, MAX_BODY)) as typeof answer;
    } catch {
      return { state: 'running', detail: 'the webhook status is not JSON' };
    }
    const status = typeof answer.status === 'string' ? answer.status.toLowerCase() : '';
    const reason = typeof answer.reason === 'string' ? redactText(answer.reason).slice(0, 300) : undefined;
    if (status === 'succeeded' || status === 'completed')
      return verified(this.health, consumer, context, `webhook run ${status}`);
    if (status === 'failed' || status === 'canceled' || status === 'cancelled') {
      return { state: 'failed', reason: `webhook run ${status}${reason ? `: ${reason}` : ''}` };
    }
    return { state: 'running', detail: `webhook run ${status || 'pending'}` };
  }
}

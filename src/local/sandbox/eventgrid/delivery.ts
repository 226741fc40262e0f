/**
 * Event Grid as the world's event bus: services raise system events (Key Vault today), matching
 * event subscriptions of the scenario get them pushed to the app's Event Grid endpoint, the way Event
 * Grid delivers to a webhook / Azure Function: one event per request, at-least-once (sometimes twice,
 * on purpose), retried on failure, dead-lettered after the last attempt.
 *
 * Fidelity: Azure waits 10 s, 30 s, 1 min, 5 min, 10 min, 30 min, 1 h, 3 h, 6 h, then every 12 h
 * between attempts (up to 30 attempts / 24 h). The sandbox retries at once, a bounded number of times
 * (`delivery.maxAttempts`, default 5), and records the wait Azure would have used on each attempt.
 * As Azure does for webhooks, 400, 401, 403 and 413 are not retried: the event is dead-lettered.
 * Like Azure, which waits 30 s for an answer, an attempt that takes longer than `delivery.timeoutMs`
 * (default 30 000) fails and is retried: a hung handler cannot hold the clock forever.
 */
import { randomUUID } from 'node:crypto';
import type { SandboxClock } from '../clock';
import { seededUuid } from '../ids';
import type { EventGridDeliverySchema, ResolvedScenario } from '../scenario';

/** Options of one delivery attempt. */
export interface DeliveryAttemptOptions {
  /** Aborted when the sandbox gives up on the attempt (after `timeoutMs`): stop the request then. */
  abortSignal: AbortSignal;
  /** The per-attempt limit (`delivery.timeoutMs`, default 30 000 as Event Grid's). */
  timeoutMs: number;
}

/**
 * Where the sandbox pushes events: the local host POSTs them to `/runtime/webhooks/eventgrid?functionName=`.
 *
 * Per-attempt timeout: the sandbox waits at most `options.timeoutMs` for `post` to settle. Past that
 * the attempt counts as failed (no status, retried like a 5xx), `options.abortSignal` is aborted and
 * whatever `post` resolves to later is ignored. A target should stop its request on the signal (or
 * on a timeout of its own no longer than `timeoutMs`) so that nothing keeps running after it.
 */
export interface EventDeliveryTarget {
  /** `body` in the answer is only read by the subscription validation handshake. */
  post(
    functionName: string,
    body: string,
    headers: Record<string, string>,
    options?: DeliveryAttemptOptions,
  ): Promise<{ status: number; body?: string }>;
}

/** The error of an attempt that did not answer within the timeout. */
export class DeliveryTimeoutError extends Error {
  constructor(readonly timeoutMs: number) {
    super(`the endpoint did not answer within ${timeoutMs} ms (Event Grid counts this as a failed attempt)`);
    this.name = 'DeliveryTimeoutError';
  }
}

/** The outcome of the subscription validation handshake for one subscription. */
export interface SubscriptionValidation {
  subscription: string;
  functionName: string;
  validated: boolean;
  status: number | undefined;
  reason?: string;
}

/** A system event as the world raised it, in Event Grid schema (`data` keys as the service publishes them). */
export interface RaisedEvent {
  id: string;
  topic: string;
  subject: string;
  eventType: string;
  eventTime: string;
  data: Record<string, unknown>;
  dataVersion: string;
  metadataVersion: string;
}

export interface DeliveryAttempt {
  eventId: string;
  eventType: string;
  subject: string;
  subscription: string;
  functionName: string;
  schema: EventGridDeliverySchema;
  /** 1 for the first delivery of the event to this subscription, 2 for the deliberate duplicate. */
  copy: number;
  /** 1-based attempt number within this copy. */
  attempt: number;
  /** HTTP status the endpoint answered; undefined when the request itself failed. */
  status: number | undefined;
  error?: string;
  outcome: 'delivered' | 'retrying' | 'dead-lettered';
  /** The wait Azure would have observed before this attempt (0 for the first). */
  azureBackoffMs: number;
  /** Sandbox-clock time of the attempt. */
  time: string;
}

export interface UndeliveredEvent {
  subscription: string;
  functionName: string;
  copy: number;
  event: RaisedEvent;
  attempts: number;
  lastStatus: number | undefined;
  reason: string;
  time: string;
}

/** Azure's documented waits between delivery attempts; the last one repeats. */
const AZURE_BACKOFF_MS = [10, 30, 60, 300, 600, 1800, 3600, 10_800, 21_600, 43_200].map((s) => s * 1000);
const NOT_RETRIED = new Set([400, 401, 403, 413]);

function azureBackoffBefore(attempt: number): number {
  if (attempt <= 1) return 0;
  return AZURE_BACKOFF_MS[Math.min(attempt - 2, AZURE_BACKOFF_MS.length - 1)]!;
}

/** Renders an Event Grid schema event as a CloudEvents 1.0 event (as Event Grid does for CloudEvent subscriptions). */
export function toCloudEvent(event: RaisedEvent): Record<string, unknown> {
  return {
    id: event.id,
    source: event.topic,
    subject: event.subject,
    type: event.eventType,
    time: event.eventTime,
    data: event.data,
    specversion: '1.0',
  };
}

export class EventBus {
  private readonly raised: RaisedEvent[] = [];
  private readonly attempts: DeliveryAttempt[] = [];
  private readonly deadLetters: UndeliveredEvent[] = [];
  private chain: Promise<void> = Promise.resolve();
  private pending = 0;
  /** How many events of each (type, subject identity) were created: the ordinal in their seeded id. */
  private readonly created = new Map<string, number>();

  constructor(
    private readonly scenario: ResolvedScenario,
    private readonly clock: SandboxClock,
    private readonly target: EventDeliveryTarget | undefined,
    private readonly random: () => number,
  ) {}

  /**
   * Builds a system event stamped with the sandbox clock. Its id derives from the scenario's seed, the
   * event type, what the event is about (`identity`, e.g. the versioned secret id; `topic/subject`
   * when omitted) and how many such events came before: the same story gives the same ids, so the
   * app's idempotency keys survive a restart that replays it.
   */
  createEvent(
    topic: string,
    subject: string,
    eventType: string,
    data: Record<string, unknown>,
    identity = `${topic}/${subject}`,
  ): RaisedEvent {
    const key = `${eventType}\n${identity}`;
    const ordinal = this.created.get(key) ?? 0;
    this.created.set(key, ordinal + 1);
    return {
      id: seededUuid(this.scenario.seed, 'event', eventType, identity, ordinal),
      topic,
      subject,
      eventType,
      eventTime: this.clock.now().toISOString(),
      data,
      dataVersion: '1',
      metadataVersion: '1',
    };
  }

  /**
   * Records `event` and queues one delivery per matching subscription. Deliveries run one after the
   * other in the order events were raised; `idle()` waits for them.
   */
  raise(event: RaisedEvent, vaultName: string): void {
    this.raised.push(event);
    for (const sub of this.scenario.eventGrid.subscriptions) {
      if (sub.vault !== '*' && sub.vault.toLowerCase() !== vaultName.toLowerCase()) continue;
      if (sub.eventTypes.length > 0 && !sub.eventTypes.includes(event.eventType)) continue;
      if (!this.target) continue;
      const copies = this.random() < this.scenario.delivery.duplicateProbability ? 2 : 1;
      for (let copy = 1; copy <= copies; copy++) this.enqueue(() => this.deliver(event, sub, copy));
    }
  }

  /**
   * Runs the Event Grid subscription validation handshake against every Event Grid schema
   * subscription: posts a `Microsoft.EventGrid.SubscriptionValidationEvent` with
   * `aeg-event-type: SubscriptionValidation` and expects `{ "validationResponse": <code> }` back.
   * CloudEvents subscriptions validate with an HTTP OPTIONS request instead, which the delivery
   * target cannot send: they are reported as not validated, with the reason.
   */
  async validateSubscriptions(): Promise<SubscriptionValidation[]> {
    const results: SubscriptionValidation[] = [];
    for (const sub of this.scenario.eventGrid.subscriptions) {
      const base = { subscription: sub.name, functionName: sub.endpoint.functionName };
      if (!this.target) {
        results.push({
          ...base,
          validated: false,
          status: undefined,
          reason: 'the sandbox has no delivery target',
        });
        continue;
      }
      if (sub.schema === 'CloudEventSchemaV1_0') {
        results.push({
          ...base,
          validated: false,
          status: undefined,
          reason: 'CloudEvents subscriptions validate with an HTTP OPTIONS handshake, not emulated',
        });
        continue;
      }
      const code = randomUUID();
      const event = {
        id: randomUUID(),
        topic: `/subscriptions/${this.scenario.azure.subscriptionId}`,
        subject: '',
        data: {
          validationCode: code,
          validationUrl: `https://rp-sandbox.eventgrid.azure.net:553/eventsubscriptions/${sub.name}/validate?id=${code}`,
        },
        eventType: 'Microsoft.EventGrid.SubscriptionValidationEvent',
        eventTime: this.clock.now().toISOString(),
        metadataVersion: '1',
        dataVersion: '1',
      };
      let status: number | undefined;
      let answer: string | undefined;
      try {
        const response = await this.post(sub.endpoint.functionName, JSON.stringify([event]), {
          'content-type': 'application/json',
          'aeg-event-type': 'SubscriptionValidation',
          'aeg-subscription-name': sub.name.toUpperCase(),
          'aeg-delivery-count': '0',
          'aeg-data-version': '1',
          'aeg-metadata-version': '1',
        });
        status = response.status;
        answer = response.body;
      } catch (err) {
        results.push({
          ...base,
          validated: false,
          status,
          reason: err instanceof Error ? err.message : String(err),
        });
        continue;
      }
      let echoed: unknown;
      try {
        echoed =
          answer === undefined
            ? undefined
            : (JSON.parse(answer) as { validationResponse?: unknown }).validationResponse;
      } catch {
        echoed = undefined;
      }
      const validated = status === 200 && echoed === code;
      results.push({
        ...base,
        validated,
        status,
        ...(validated ? {} : { reason: `expected 200 with {"validationResponse":"${code}"}, got ${status}` }),
      });
    }
    return results;
  }

  events(): RaisedEvent[] {
    return this.raised.map((e) => structuredClone(e));
  }

  deliveries(): DeliveryAttempt[] {
    return this.attempts.map((a) => ({ ...a }));
  }

  undelivered(): UndeliveredEvent[] {
    return this.deadLetters.map((u) => structuredClone(u));
  }

  /** Resolves when every queued delivery (including ones queued while waiting) has finished. */
  async idle(): Promise<void> {
    while (this.pending > 0) await this.chain;
  }

  /**
   * One attempt: the target's `post` raced against the per-attempt timeout. A `post` that never
   * settles would otherwise hold the delivery chain, and with it every clock move, forever.
   */
  private async post(
    functionName: string,
    body: string,
    headers: Record<string, string>,
  ): Promise<{ status: number; body?: string }> {
    const timeoutMs = this.scenario.delivery.timeoutMs;
    const controller = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const error = new DeliveryTimeoutError(timeoutMs);
        controller.abort(error);
        reject(error);
      }, timeoutMs);
    });
    try {
      const attempt = Promise.resolve().then(() =>
        this.target!.post(functionName, body, headers, { abortSignal: controller.signal, timeoutMs }),
      );
      // The losing attempt may still reject later: nobody waits for it.
      attempt.catch(() => undefined);
      return await Promise.race([attempt, timedOut]);
    } finally {
      clearTimeout(timer);
    }
  }

  private enqueue(work: () => Promise<void>): void {
    this.pending += 1;
    // A failing delivery must not stop the ones queued after it.
    this.chain = this.chain
      .then(work)
      .catch(() => undefined)
      .finally(() => {
        this.pending -= 1;
      });
  }

  private async deliver(
    event: RaisedEvent,
    sub: ResolvedScenario['eventGrid']['subscriptions'][number],
    copy: number,
  ): Promise<void> {
    const cloud = sub.schema === 'CloudEventSchemaV1_0';
    const body = cloud ? JSON.stringify(toCloudEvent(event)) : JSON.stringify([event]);
    const max = this.scenario.delivery.maxAttempts;
    let lastStatus: number | undefined;
    let reason = '';
    for (let attempt = 1; attempt <= max; attempt++) {
      const headers: Record<string, string> = {
        'content-type': cloud ? 'application/cloudevents+json; charset=utf-8' : 'application/json',
        'aeg-event-type': 'Notification',
        'aeg-subscription-name': sub.name.toUpperCase(),
        'aeg-delivery-count': String(attempt - 1),
      };
      if (!cloud) {
        headers['aeg-data-version'] = event.dataVersion;
        headers['aeg-metadata-version'] = event.metadataVersion;
      }
      let status: number | undefined;
      let error: string | undefined;
      try {
        status = (await this.post(sub.endpoint.functionName, body, headers)).status;
      } catch (err) {
        error = err instanceof Error ? err.message : String(err);
      }
      lastStatus = status;
      const ok = status !== undefined && status >= 200 && status <= 204;
      const final = ok || (status !== undefined && NOT_RETRIED.has(status)) || attempt === max;
      this.attempts.push({
        eventId: event.id,
        eventType: event.eventType,
        subject: event.subject,
        subscription: sub.name,
        functionName: sub.endpoint.functionName,
        schema: sub.schema,
        copy,
        attempt,
        status,
        ...(error === undefined ? {} : { error }),
        outcome: ok ? 'delivered' : final ? 'dead-lettered' : 'retrying',
        azureBackoffMs: azureBackoffBefore(attempt),
        time: this.clock.now().toISOString(),
      });
      if (ok) return;
      reason =
        status !== undefined && NOT_RETRIED.has(status)
          ? `endpoint answered ${status}, which Event Grid does not retry`
          : `no success after ${attempt} attempt(s); last ${status === undefined ? `error: ${error}` : `status ${status}`}`;
      if (final) {
        this.deadLetters.push({
          subscription: sub.name,
          functionName: sub.endpoint.functionName,
          copy,
          event: structuredClone(event),
          attempts: attempt,
          lastStatus,
          reason,
          time: this.clock.now().toISOString(),
        });
        return;
      }
    }
  }
}

/**
 * The Event Grid webhook of the Functions Event Grid extension
 * (`/runtime/webhooks/eventgrid?functionName=<name>`), following Microsoft.Azure.WebJobs.Extensions.EventGrid
 * 3.x, the one extension bundle 4.x carries (`EventGridExtensionConfigProvider`, `HttpRequestProcessor`):
 * - unknown function, or not an Event Grid function: 404 `cannot find function: '<name>'`;
 * - `OPTIONS` (CloudEvents abuse protection): 200 with `WebHook-Allowed-Origin` set to the
 *   `WebHook-Request-Origin` when it is one of Event Grid's cloud origins (`eventgrid.azure.net`,
 *   `eventgrid.azure.us`, `eventgrid.azure.cn`, `eventgrid.azure.eaglex.ic.gov`,
 *   `eventgrid.azure.microsoft.scloud`), `eventgrid.azure.net` otherwise or without the header; no
 *   `aeg-event-type` is needed;
 * - then, whatever the method (the host's route takes GET, POST and DELETE alike), the
 *   `aeg-event-type` header decides: `SubscriptionValidation` → 200 `{ "validationResponse": "<code>" }`
 *   (Event Grid array, or a CloudEvent whose `data` may be double-encoded); `Notification` → one
 *   invocation per event (array or single object, either schema), all run before answering: 202 when
 *   all succeeded, 500 when one failed (Event Grid then redelivers the whole batch); `Unsubscribe` →
 *   202; anything else or none → 400. Other methods: 405.
 *
 * Where the extension throws (a body it cannot read, an event it cannot bind), the Functions host's
 * exception middleware answers 500 and Event Grid redelivers for up to 24 hours. The local host
 * answers 400 instead, before invoking anything (`readEventGridBody`): a redelivered poison event
 * never succeeds, and Event Grid drops (or dead-letters) at once on a 400.
 *
 * The extension starts every invocation of a batch at once; the local host runs them
 * `EVENT_GRID_CONCURRENCY` at a time and yields to the event loop while doing so, so that a
 * 5,000-event batch does not starve other requests of the one Node.js thread (in Azure the worker
 * is a process of its own). The outcome is the same: every event is invoked once, the answer comes
 * when all have finished.
 */
import { readEventGridBody, yieldToEventLoop } from './eventGridBody';
import type { InvocationOutcome, Invoker, RegisteredFunction } from './types';

export interface WebhookRequest {
  method: string;
  headers: Record<string, string | string[] | undefined>;
  query: URLSearchParams;
  body: Buffer;
}

export interface WebhookResponse {
  status: number;
  headers?: Record<string, string>;
  body?: string;
}

export interface EventGridWebhookOptions {
  findFunction(name: string): RegisteredFunction | undefined;
  invoker: Invoker;
  log(message: string): void;
  /** Invocations of one batch running at once (default `EVENT_GRID_CONCURRENCY`). */
  concurrency?: number;
}

/** Invocations of one delivery that run at once on the local host. */
export const EVENT_GRID_CONCURRENCY = 32;
/** The host yields to the event loop after this many invocations of a batch (or 5 ms). */
const INVOCATIONS_BETWEEN_YIELDS = 64;
const MS_BETWEEN_YIELDS = 5;

/** Event Grid's public and sovereign cloud origins, which the extension echoes back. */
const EVENT_GRID_ORIGINS = [
  'eventgrid.azure.net',
  'eventgrid.azure.us',
  'eventgrid.azure.eaglex.ic.gov',
  'eventgrid.azure.microsoft.scloud',
  'eventgrid.azure.cn',
];
const PUBLIC_CLOUD_ORIGIN = 'eventgrid.azure.net';
/** Methods the host's `runtime/webhooks/{extensionName}` route accepts. */
const WEBHOOK_METHODS = ['GET', 'POST', 'DELETE', 'OPTIONS'];

function header(headers: WebhookRequest['headers'], name: string): string | undefined {
  const value = headers[name.toLowerCase()];
  return Array.isArray(value) ? value[0] : value;
}

/**
 * The `WebHook-Allowed-Origin` the extension answers: the request's origin when it is an Event Grid
 * cloud (compared exactly, as the extension's `switch` does), the public cloud's otherwise.
 */
export function allowedOrigin(requestOrigin: string | undefined): string {
  return requestOrigin !== undefined && EVENT_GRID_ORIGINS.includes(requestOrigin)
    ? requestOrigin
    : PUBLIC_CLOUD_ORIGIN;
}

/** Answers one request to the Event Grid webhook. Never throws. */
export async function handleEventGridWebhook(
  req: WebhookRequest,
  options: EventGridWebhookOptions,
): Promise<WebhookResponse> {
  const method = req.method.toUpperCase();
  if (!WEBHOOK_METHODS.includes(method))
    return { status: 405, headers: { allow: WEBHOOK_METHODS.join(', ') } };
  const functionName = req.query.get('functionName') ?? '';
  const fn = functionName ? options.findFunction(functionName) : undefined;
  if (fn?.trigger.type.toLowerCase() !== 'eventgridtrigger') {
    return { status: 404, body: `cannot find function: '${functionName}'` };
  }

  if (method === 'OPTIONS') {
    return {
      status: 200,
      headers: { 'WebHook-Allowed-Origin': allowedOrigin(header(req.headers, 'webhook-request-origin')) },
    };
  }

  const eventType = (header(req.headers, 'aeg-event-type') ?? '').toLowerCase();
  if (eventType === 'unsubscribe') return { status: 202 };
  if (eventType !== 'subscriptionvalidation' && eventType !== 'notification') {
    return {
      status: 400,
      body: 'The aeg-event-type header must be SubscriptionValidation, Notification or Unsubscribe.',
    };
  }

  const read = await readEventGridBody(req.body);
  if (!read.ok) return { status: read.status, body: read.message };

  if (eventType === 'subscriptionvalidation') {
    const code = validationCode(read.events[0]);
    if (!code) return { status: 400, body: 'The validation event carries no data.validationCode.' };
    options.log(`perform handshake with eventGrid for function: ${fn.name}`);
    return {
      status: 200,
      headers: { 'content-type': 'application/json; charset=utf-8' },
      body: JSON.stringify({ validationResponse: code }),
    };
  }

  const outcomes = await invokeEach(
    read.events,
    (event) => options.invoker.invoke(fn, { trigger: { json: event } }),
    options.concurrency ?? EVENT_GRID_CONCURRENCY,
  );
  const failed = outcomes.filter((o) => !o.ok).length;
  if (failed > 0) {
    // The extension answers with the exception message; we keep error details in the log only.
    return { status: 500, body: `${failed} of ${outcomes.length} invocation(s) of '${fn.name}' failed.` };
  }
  return { status: 202 };
}

/**
 * Runs `run` on every item, `concurrency` at a time, and resolves with the outcomes in order. While
 * it works it lets the event loop turn every `INVOCATIONS_BETWEEN_YIELDS` invocations or
 * `MS_BETWEEN_YIELDS` ms: no new invocation starts until pending I/O callbacks have run.
 */
export async function invokeEach<T>(
  items: readonly T[],
  run: (item: T) => Promise<InvocationOutcome>,
  concurrency: number,
): Promise<InvocationOutcome[]> {
  const outcomes: InvocationOutcome[] = new Array(items.length);
  let next = 0;
  let sinceYield = 0;
  let lastYield = Date.now();
  let pause: Promise<void> | undefined;
  const worker = async () => {
    for (;;) {
      if (pause) await pause;
      if (next >= items.length) return;
      const index = next++;
      outcomes[index] = await run(items[index] as T);
      sinceYield += 1;
      if (
        !pause &&
        (sinceYield >= INVOCATIONS_BETWEEN_YIELDS || Date.now() - lastYield >= MS_BETWEEN_YIELDS)
      ) {
        pause = yieldToEventLoop().then(() => {
          pause = undefined;
          sinceYield = 0;
          lastYield = Date.now();
        });
      }
    }
  };
  const workers = Math.max(1, Math.min(concurrency, items.length));
  await Promise.all(Array.from({ length: workers }, worker));
  return outcomes;
}

function validationCode(eventText: string | undefined): string | undefined {
  if (eventText === undefined) return undefined;
  let data = (JSON.parse(eventText) as { data?: unknown }).data;
  if (typeof data === 'string') {
    // The CloudEvents schema's validation event carries its data double-encoded.
    try {
      data = JSON.parse(data);
    } catch {
      return undefined;
    }
  }
  const code = (data as { validationCode?: unknown } | null | undefined)?.validationCode;
  return typeof code === 'string' && code !== '' ? code : undefined;
}

/**
 * The Event Grid webhook of the Functions Event Grid extension
 * (`/runtime/webhooks/eventgrid?functionName=<name>`), following Microsoft.Azure.WebJobs.Extensions.EventGrid
 * (EventGridExtensionConfigProvider + HttpRequestProcessor):
 * - unknown function: 404;
 * - `OPTIONS` with `WebHook-Request-Origin` (CloudEvents abuse protection): 200 with `WebHook-Allowed-Origin`;
 * - `aeg-event-type: SubscriptionValidation`: 200 `{ "validationResponse": "<code>" }` (Event Grid schema
 *   array, or a CloudEvent whose `data` may be double-encoded);
 * - `aeg-event-type: Notification`: the function runs once per event (array or single object, either
 *   schema), in parallel; 202 when all succeeded, 500 when one failed so that Event Grid retries;
 * - `aeg-event-type: Unsubscribe`: 202; anything else: 400.
 */
import type { Invoker, RegisteredFunction } from './types';

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
}

function header(headers: WebhookRequest['headers'], name: string): string | undefined {
  const value = headers[name.toLowerCase()];
  return Array.isArray(value) ? value[0] : value;
}

/** Answers one request to the Event Grid webhook. Never throws. */
export async function handleEventGridWebhook(
  req: WebhookRequest,
  options: EventGridWebhookOptions,
): Promise<WebhookResponse> {
  const functionName = req.query.get('functionName') ?? '';
  const fn = functionName ? options.findFunction(functionName) : undefined;
  if (fn?.trigger.type.toLowerCase() !== 'eventgridtrigger') {
    return { status: 404, body: `cannot find function: '${functionName}'` };
  }

  if (req.method === 'OPTIONS') {
    const origin = header(req.headers, 'webhook-request-origin');
    if (!origin)
      return { status: 400, body: 'Invalid CloudEvents validation request: no WebHook-Request-Origin.' };
    return { status: 200, headers: { 'WebHook-Allowed-Origin': origin, 'WebHook-Allowed-Rate': '*' } };
  }
  if (req.method !== 'POST') return { status: 405, headers: { allow: 'POST, OPTIONS' } };

  const eventType = (header(req.headers, 'aeg-event-type') ?? '').toLowerCase();
  if (eventType === 'unsubscribe') return { status: 202 };
  if (eventType !== 'subscriptionvalidation' && eventType !== 'notification') {
    return {
      status: 400,
      body: 'The aeg-event-type header must be SubscriptionValidation, Notification or Unsubscribe.',
    };
  }

  let payload: unknown;
  try {
    payload = JSON.parse(req.body.toString('utf8'));
  } catch {
    return { status: 400, body: 'The request content must be a JSON object or array.' };
  }
  if (payload === null || typeof payload !== 'object') {
    return { status: 400, body: 'The request content must be a JSON object or array.' };
  }

  if (eventType === 'subscriptionvalidation') {
    const code = validationCode(payload);
    if (!code) return { status: 400, body: 'The validation event carries no data.validationCode.' };
    options.log(`perform handshake with eventGrid for function: ${fn.name}`);
    return {
      status: 200,
      headers: { 'content-type': 'application/json; charset=utf-8' },
      body: JSON.stringify({ validationResponse: code }),
    };
  }

  const events = Array.isArray(payload) ? payload : [payload];
  const outcomes = await Promise.all(
    events.map((event) => options.invoker.invoke(fn, { trigger: { json: JSON.stringify(event) } })),
  );
  const failed = outcomes.filter((o) => !o.ok).length;
  if (failed > 0) {
    // The extension answers with the exception message; we keep error details in the log only.
    return { status: 500, body: `${failed} of ${events.length} invocation(s) of '${fn.name}' failed.` };
  }
  return { status: 202 };
}

function validationCode(payload: object): string | undefined {
  const first = (Array.isArray(payload) ? payload[0] : payload) as { data?: unknown } | undefined;
  let data = first?.data;
  if (typeof data === 'string') {
    try {
      data = JSON.parse(data);
    } catch {
      return undefined;
    }
  }
  const code = (data as { validationCode?: unknown } | undefined)?.validationCode;
  return typeof code === 'string' && code !== '' ? code : undefined;
}

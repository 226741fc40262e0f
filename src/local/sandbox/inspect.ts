/**
 * The inspection API the local host mounts under `/sandbox/`: read-only views of the estate, the
 * clock, the events raised and delivered, and the notifications published; the one write is
 * `POST /sandbox/clock/advance`. No view contains a secret value (they are built from the
 * value-free estate and from event payloads, which carry none).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { MAX_MOVE_MS, moveProblem } from './clock';
import { handleMonitorHttp } from './monitor/inspect';
import type { Sandbox } from './sandbox';

export type AdvanceRequest =
  | { days?: number; hours?: number; minutes?: number; seconds?: number }
  | { to: string | Date };

const UNIT_MS: Record<string, number> = {
  days: 86_400_000,
  hours: 3_600_000,
  minutes: 60_000,
  seconds: 1000,
};
const MAX_BODY_BYTES = 64 * 1024;

export type ParsedAdvance = { ok: true; to: Date } | { ok: true; ms: number } | { ok: false; error: string };

/**
 * Validates an advance request against the current time before anything moves; the error says what
 * is expected. A move is a duration of non-negative finite numbers or a `to` not before now, and
 * takes the clock at most 100 years ahead (`MAX_MOVE_MS`): `{"days":1e10}` is refused, not obeyed.
 */
export function parseAdvance(input: unknown, now: Date): ParsedAdvance {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    return {
      ok: false,
      error:
        'expected a JSON object: { "days"?, "hours"?, "minutes"?, "seconds"? } or { "to": "<ISO time>" }',
    };
  }
  const body = input as Record<string, unknown>;
  const keys = Object.keys(body);
  const unknown = keys.filter((k) => k !== 'to' && !(k in UNIT_MS));
  if (unknown.length > 0) {
    return {
      ok: false,
      error: `unknown field(s) ${unknown.join(', ')}: use days, hours, minutes, seconds, or to`,
    };
  }
  if ('to' in body) {
    if (keys.length > 1)
      return { ok: false, error: 'give either "to" or a duration (days/hours/minutes/seconds), not both' };
    const raw = body.to;
    const to =
      raw instanceof Date
        ? raw
        : typeof raw === 'string' && /^\d{4}-\d{2}-\d{2}/.test(raw)
          ? new Date(raw)
          : undefined;
    if (!to || Number.isNaN(to.getTime()))
      return { ok: false, error: '"to" must be an ISO 8601 time such as 2026-02-01T00:00:00Z' };
    if (to.getTime() < now.getTime()) {
      return {
        ok: false,
        error: `"to" (${to.toISOString()}) is before the sandbox time ${now.toISOString()}: time only moves forward`,
      };
    }
    const problem = moveProblem(now.getTime(), to.getTime());
    if (problem) return { ok: false, error: `"to" (${to.toISOString()}): ${problem}` };
    return { ok: true, to };
  }
  if (keys.length === 0) return { ok: false, error: 'give a duration (days/hours/minutes/seconds) or "to"' };
  let ms = 0;
  for (const key of keys) {
    const value = body[key];
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
      return { ok: false, error: `"${key}" must be a non-negative number` };
    }
    ms += value * UNIT_MS[key]!;
  }
  // Checked on the sum: each part may be fine and the whole still too far (or past what a Date holds).
  if (!(ms <= MAX_MOVE_MS)) {
    return {
      ok: false,
      error: `the duration (${keys.map((k) => `${k}: ${body[k]}`).join(', ')}) is too long: one move may take the clock at most 100 years (36525 days) ahead`,
    };
  }
  const problem = moveProblem(now.getTime(), now.getTime() + Math.round(ms));
  if (problem) return { ok: false, error: problem };
  // A duration stays relative: two advances queued together move the clock twice.
  return { ok: true, ms: Math.round(ms) };
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body, null, 2);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
  res.end(text);
}

async function readBody(req: IncomingMessage): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
    size += buf.length;
    if (size > MAX_BODY_BYTES) return undefined;
    chunks.push(buf);
  }
  return Buffer.concat(chunks).toString('utf8');
}

const INDEX = {
  description:
    'stampkeeper sandbox: in-process emulation of the Azure services the app calls, and the world around it',
  links: {
    estate: '/sandbox/estate',
    clock: '/sandbox/clock',
    advanceClock: 'POST /sandbox/clock/advance  {"days":31} | {"to":"2026-02-15T00:00:00Z"}',
    events: '/sandbox/events',
    notifications: '/sandbox/notifications',
    monitor: '/sandbox/monitor',
    alerts: '/sandbox/alerts',
    serviceBus: '/sandbox/servicebus',
    serviceBusMessages:
      '/sandbox/servicebus/messages?path=<queue or topic/Subscriptions/name>&queue=active|deadLetter|scheduled&limit=20',
    downtime: '/sandbox/downtime',
    consumers: '/sandbox/consumers',
    requests: '/sandbox/requests',
  },
};

/** Serves `/sandbox/*`; resolves false (and writes nothing) for any other path. */
export async function handleInspectionHttp(
  sandbox: Sandbox,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<boolean> {
  const path = new URL(req.url ?? '/', 'http://sandbox.local').pathname;
  if (path !== '/sandbox' && !path.startsWith('/sandbox/')) return false;
  const route = path.replace(/\/+$/, '') || '/';
  const method = (req.method ?? 'GET').toUpperCase();
  const readOnly = (view: () => unknown) => {
    if (method !== 'GET')
      send(res, 405, {
        error: { code: 'MethodNotAllowed', message: `${method} ${route}: this view is read-only (GET)` },
      });
    else send(res, 200, view());
    return true;
  };
  if (route === '/sandbox/monitor' || route.startsWith('/sandbox/monitor/'))
    return handleMonitorHttp(sandbox.monitor, route, method, req, res);
  switch (route) {
    case '/sandbox':
      return readOnly(() => INDEX);
    case '/sandbox/estate':
      return readOnly(() => sandbox.estate());
    case '/sandbox/clock':
      return readOnly(() => ({ now: sandbox.clock.now().toISOString() }));
    case '/sandbox/events':
      return readOnly(() => {
        const deliveries = sandbox.deliveries();
        return {
          events: sandbox.events().map((event) => ({
            ...event,
            deliveries: deliveries.filter((d) => d.eventId === event.id),
          })),
          undelivered: sandbox.eventGrid.undelivered(),
        };
      });
    case '/sandbox/notifications':
      return readOnly(() => ({ eventGrid: sandbox.eventGrid.published(), webhooks: sandbox.webhooks() }));
    case '/sandbox/servicebus':
    case '/sandbox/servicebus/messages': {
      const serviceBus = sandbox.serviceBus;
      if (!serviceBus) {
        send(res, 404, {
          error: {
            code: 'NotFound',
            message: 'no Service Bus broker is attached to this sandbox (no serviceBus section)',
          },
        });
        return true;
      }
      if (route === '/sandbox/servicebus') return readOnly(() => serviceBus.summary());
      if (method !== 'GET') return readOnly(() => undefined);
      const answer = serviceBus.messages(new URL(req.url ?? '/', 'http://sandbox.local').searchParams);
      send(res, answer.status, answer.body);
      return true;
    }
    case '/sandbox/alerts':
      return readOnly(() => ({ rules: sandbox.alerts.rules(), deliveries: sandbox.alerts.deliveries() }));
    case '/sandbox/downtime':
      return readOnly(() => sandbox.downtime());
    case '/sandbox/consumers':
      return readOnly(() => ({
        consumers: sandbox.consumers(),
        webhookCallbacks: sandbox.webhookCallbacks(),
      }));
    case '/sandbox/requests':
      return readOnly(() => ({ requests: sandbox.requests() }));
    case '/sandbox/clock/advance': {
      if (method !== 'POST') {
        send(res, 405, { error: { code: 'MethodNotAllowed', message: 'use POST with a JSON body' } });
        return true;
      }
      const text = await readBody(req);
      if (text === undefined) {
        send(res, 413, {
          error: { code: 'PayloadTooLarge', message: `the body exceeds ${MAX_BODY_BYTES} bytes` },
        });
        return true;
      }
      let input: unknown;
      try {
        input = JSON.parse(text);
      } catch {
        send(res, 400, { error: { code: 'BadRequest', message: 'the body is not valid JSON' } });
        return true;
      }
      const parsed = parseAdvance(input, sandbox.clock.now());
      if (!parsed.ok) {
        send(res, 400, { error: { code: 'BadRequest', message: parsed.error } });
        return true;
      }
      let result: unknown;
      try {
        result = await sandbox.advance(input as AdvanceRequest);
      } catch (err) {
        // Checked above against the time then; a concurrent advance may have moved past `to` since.
        if (!(err instanceof RangeError)) throw err;
        send(res, 400, { error: { code: 'BadRequest', message: err.message } });
        return true;
      }
      send(res, 200, result);
      return true;
    }
    default:
      send(res, 404, {
        error: { code: 'NotFound', message: `${route} is not a sandbox view; see /sandbox/` },
      });
      return true;
  }
}

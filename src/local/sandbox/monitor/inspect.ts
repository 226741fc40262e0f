/**
 * The monitor part of the inspection API (`/sandbox/monitor...`), for people driving `npm start` by hand
 * and for end-to-end tests: read what the emulation holds, record metric samples, switch query results
 * and workspace states. Bad input: 400 with the reason, nothing changed.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { MonitorSandbox } from './index';
import { WORKSPACE_STATES, type WorkspaceState } from './scenario';

const MAX_BODY_BYTES = 64 * 1024;

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body, null, 2));
}

function fail(res: ServerResponse, status: number, code: string, message: string): true {
  send(res, status, { error: { code, message } });
  return true;
}

async function readJson(
  req: IncomingMessage,
): Promise<{ ok: true; value: unknown } | { ok: false; status: number; message: string }> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
    size += buf.length;
    if (size > MAX_BODY_BYTES)
      return { ok: false, status: 413, message: `the body exceeds ${MAX_BODY_BYTES} bytes` };
    chunks.push(buf);
  }
  try {
    return { ok: true, value: JSON.parse(Buffer.concat(chunks).toString('utf8')) };
  } catch {
    return { ok: false, status: 400, message: 'the body is not valid JSON' };
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const ROUTES = {
  view: 'GET /sandbox/monitor',
  record: 'POST /sandbox/monitor/metrics/record {"resourceId","metric","dimensions"?,"value","at"?}',
  result: 'POST /sandbox/monitor/logs/result {"workspaceId","query","result"}',
  state: `POST /sandbox/monitor/logs/state {"workspaceId","state": ${WORKSPACE_STATES.join('|')}}`,
};

/** Serves `/sandbox/monitor` and below; `route` has no trailing slash. */
export async function handleMonitorHttp(
  monitor: MonitorSandbox,
  route: string,
  method: string,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<true> {
  if (route === '/sandbox/monitor') {
    if (method !== 'GET')
      return fail(res, 405, 'MethodNotAllowed', `${method} ${route}: this view is read-only (GET)`);
    send(res, 200, { routes: ROUTES, ...monitor.describe() });
    return true;
  }
  const actions = [
    '/sandbox/monitor/metrics/record',
    '/sandbox/monitor/logs/result',
    '/sandbox/monitor/logs/state',
  ];
  if (!actions.includes(route))
    return fail(res, 404, 'NotFound', `${route} is not a sandbox view; see /sandbox/monitor`);
  if (method !== 'POST') return fail(res, 405, 'MethodNotAllowed', 'use POST with a JSON body');
  const body = await readJson(req);
  if (!body.ok)
    return fail(res, body.status, body.status === 413 ? 'PayloadTooLarge' : 'BadRequest', body.message);
  const input = body.value;
  if (!isObject(input)) return fail(res, 400, 'BadRequest', 'expected a JSON object');
  try {
    if (route === '/sandbox/monitor/metrics/record') {
      const { resourceId, metric, dimensions, value, at } = input;
      if (typeof resourceId !== 'string' || typeof metric !== 'string')
        return fail(res, 400, 'BadRequest', '"resourceId" and "metric" must be strings');
      if (typeof value !== 'number' || !Number.isFinite(value))
        return fail(res, 400, 'BadRequest', '"value" must be a finite number');
      if (
        dimensions !== undefined &&
        (!isObject(dimensions) || Object.values(dimensions).some((v) => typeof v !== 'string'))
      )
        return fail(res, 400, 'BadRequest', '"dimensions" must map dimension names to string values');
      if (
        at !== undefined &&
        (typeof at !== 'string' || !/^\d{4}-\d{2}-\d{2}/.test(at) || Number.isNaN(Date.parse(at)))
      )
        return fail(res, 400, 'BadRequest', '"at" must be an ISO 8601 time such as 2026-01-01T00:05:00Z');
      monitor.metrics.record({
        resourceId,
        metric,
        dimensions: dimensions as Record<string, string> | undefined,
        value,
        at: at === undefined ? undefined : new Date(at as string),
      });
      send(res, 200, { recorded: { resourceId, metric, dimensions: dimensions ?? {}, value, at } });
      return true;
    }
    const { workspaceId } = input;
    if (typeof workspaceId !== 'string')
      return fail(res, 400, 'BadRequest', '"workspaceId" must be a string');
    if (route === '/sandbox/monitor/logs/result') {
      const { query, result } = input;
      if (typeof query !== 'string' || typeof result !== 'string')
        return fail(
          res,
          400,
          'BadRequest',
          '"query" (a query name) and "result" (one of its results) must be strings',
        );
      monitor.logs.setResult(workspaceId, query, result);
      send(res, 200, { workspaceId, query, result });
      return true;
    }
    const { state } = input;
    if (typeof state !== 'string' || !(WORKSPACE_STATES as readonly string[]).includes(state))
      return fail(res, 400, 'BadRequest', `"state" must be one of ${WORKSPACE_STATES.join(', ')}`);
    monitor.logs.setWorkspaceState(workspaceId, state as WorkspaceState);
    send(res, 200, { workspaceId, state });
    return true;
  } catch (err) {
    // The sandbox API checks before it changes anything and throws a RangeError with the reason.
    if (err instanceof RangeError) return fail(res, 400, 'BadRequest', err.message);
    throw err;
  }
}

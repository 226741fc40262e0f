/**
 * The local host's single HTTP server: HTTP triggers under `/<routePrefix>/`, the Event Grid webhook
 * under `/runtime/webhooks/eventgrid`, the admin API under `/admin/`, then mounted handlers (the
 * sandbox), then 404.
 */
import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { redactText } from '../../lib/core/redact';
import { type BuiltInAuth, DEFAULT_TOKEN_MINUTES, type DeveloperIdentity } from './builtInAuth';
import { LOCAL_HOST_VERSION } from './coreApi';
import { handleEventGridWebhook, type WebhookResponse } from './eventGrid';
import type { HostConfig } from './hostConfig';
import { findHttpResponse, toRpcHttpRequest, writeRpcHttpResponse } from './httpTrigger';
import { describeError } from './invoker';
import { type AccessTarget, isAuthorized, type KeySettings, presentedKey } from './keys';
import { type HttpRoute, parseRouteTemplate, pathAfterPrefix, resolveRoute } from './routes';
import { timerTriggerData } from './timer';
import type { HostLogger, InvocationInput, Invoker, RegisteredFunction } from './types';

/** A handler mounted on the server: returns true when it answered the request. */
export type MountHandler = (req: IncomingMessage, res: ServerResponse) => Promise<boolean>;

export interface LocalServerOptions {
  functions: () => RegisteredFunction[];
  invoker: Invoker;
  hostConfig: HostConfig;
  keys: KeySettings;
  logger: HostLogger;
  /** Largest request body accepted (bytes). */
  maxBodyBytes?: number;
  /** Emulated built-in authentication in front of the app (see builtInAuth.ts); none: headers pass as sent. */
  builtInAuth?: BuiltInAuth;
}

export interface LocalServer {
  readonly server: Server;
  /** `http://127.0.0.1:<port>` once listening. */
  readonly url: string;
  listen(port: number, host: string): Promise<void>;
  mount(handler: MountHandler): void;
  close(): Promise<void>;
  /** The HTTP routes, by function name (for printing). */
  routes(): HttpRoute[];
}

const DEFAULT_MAX_BODY = 100 * 1024 * 1024;
/**
 * An admin invocation's body (`{ "input": "..." }`) is parsed at once: 1 MiB keeps that short (the
 * largest Event Grid event is 1 MB; queue messages are 64 KiB).
 */
const MAX_ADMIN_BODY = 1024 * 1024 + 1024;
/** A Host header as Kestrel accepts it: a reg-name, IPv4 or bracketed IPv6 literal, optional port. */
const HOST_HEADER = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]*)(?::\d{0,5})?$/;
const STARTED_AT = Date.now();

export function createLocalServer(options: LocalServerOptions): LocalServer {
  const mounts: MountHandler[] = [];
  const maxBody = options.maxBodyBytes ?? DEFAULT_MAX_BODY;
  let routes: HttpRoute[] | undefined;
  let url = '';

  const findFunction = (name: string) =>
    options.functions().find((f) => f.name.toLowerCase() === name.toLowerCase());

  const httpRoutes = (): HttpRoute[] => {
    routes ??= options
      .functions()
      .filter((f) => f.trigger.type.toLowerCase() === 'httptrigger')
      .map((f) => ({
        functionName: f.name,
        template: parseRouteTemplate(typeof f.trigger.route === 'string' ? f.trigger.route : f.name),
        methods: Array.isArray(f.trigger.methods)
          ? (f.trigger.methods as string[]).map((m) => m.toUpperCase())
          : [],
      }));
    return routes;
  };

  const authorized = (req: IncomingMessage, query: URLSearchParams, target: AccessTarget) =>
    isAuthorized(options.keys, target, presentedKey(req.headers, query));

  /** The request as built-in authentication lets it reach the app (headers as the app sees them), or its 401. */
  const admit = (path: string, req: IncomingMessage) =>
    options.builtInAuth
      ? options.builtInAuth.admit(path, req.headers)
      : ({ ok: true, headers: req.headers } as const);

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const requestUrl = parseRequestUrl(req);
    // Kestrel answers 400 to a Host header that is not a host[:port], before any routing.
    if (!requestUrl) return send(res, { status: 400, body: 'Bad Request: invalid Host header.' });
    const path = requestUrl.pathname;
    const method = (req.method ?? 'GET').toUpperCase();

    if (path.toLowerCase() === '/runtime/webhooks/eventgrid') {
      // Built-in authentication runs in front of the Functions host (and its keys), as in Azure.
      const admitted = admit(path, req);
      if (!admitted.ok) return send(res, admitted);
      if (!authorized(req, requestUrl.searchParams, { kind: 'systemKey', name: 'eventgrid_extension' })) {
        return send(res, { status: 401 });
      }
      const body = await readBody(req, maxBody);
      const answer = await handleEventGridWebhook(
        { method, headers: admitted.headers, query: requestUrl.searchParams, body },
        { findFunction, invoker: options.invoker, log: (m) => options.logger.info(m) },
      );
      return send(res, answer);
    }

    if (path.toLowerCase() === '/admin' || path.toLowerCase().startsWith('/admin/')) {
      if (!authorized(req, requestUrl.searchParams, { kind: 'admin' })) return send(res, { status: 401 });
      const answered = await handleAdmin(req, res, path, method, requestUrl);
      if (answered) return;
    }

    const segments = pathAfterPrefix(path, options.hostConfig.routePrefix);
    if (segments) {
      const resolution = resolveRoute(httpRoutes(), method, segments);
      if (resolution.kind === 'match') {
        const fn = findFunction(resolution.route.functionName) as RegisteredFunction;
        const admitted = admit(path, req);
        if (!admitted.ok) return send(res, admitted);
        const authLevel = typeof fn.trigger.authLevel === 'string' ? fn.trigger.authLevel : undefined;
        if (!authorized(req, requestUrl.searchParams, { kind: 'function', authLevel })) {
          return send(res, { status: 401 });
        }
        return invokeHttp(req, res, fn, requestUrl, resolution.params, admitted.headers);
      }
      if (resolution.kind === 'methodNotAllowed') {
        return send(res, { status: 405, headers: { allow: resolution.allowed.join(', ') } });
      }
    }

    for (const mount of mounts) {
      if (await mount(req, res)) return;
    }
    send(res, { status: 404 });
  }

  async function invokeHttp(
    req: IncomingMessage,
    res: ServerResponse,
    fn: RegisteredFunction,
    requestUrl: URL,
    params: Record<string, string>,
    headers: IncomingHttpHeaders,
  ): Promise<void> {
    const body = await readBody(req, maxBody);
    const trigger = toRpcHttpRequest({
      method: req.method ?? 'GET',
      url: requestUrl.toString(),
      headers,
      params,
      body,
    });
    const outcome = await options.invoker.invoke(fn, { trigger });
    if (!outcome.ok) return send(res, { status: 500 });
    const response = findHttpResponse(outcome.returnValue, outcome.outputData);
    // A handler that returns nothing gets an empty 204.
    if (!response) return send(res, { status: 204 });
    writeRpcHttpResponse(res, response);
  }

  async function handleAdmin(
    req: IncomingMessage,
    res: ServerResponse,
    path: string,
    method: string,
    requestUrl: URL,
  ): Promise<boolean> {
    const base = `${requestUrl.protocol}//${requestUrl.host}`;
    const lower = path.toLowerCase().replace(/\/+$/, '');
    if (lower === '/admin/host/status' && method === 'GET') {
      sendJson(res, 200, {
        id: 'stampkeeper-local',
        state: 'Running',
        version: LOCAL_HOST_VERSION,
        versionDetails: `${LOCAL_HOST_VERSION} (stampkeeper local host, not the Functions host)`,
        processUptime: Date.now() - STARTED_AT,
        extensionBundle: bundleOf(options.hostConfig),
      });
      return true;
    }
    if (lower === '/admin/token') {
      await mintToken(req, res, method);
      return true;
    }
    if (lower === '/admin/functions' && method === 'GET') {
      sendJson(
        res,
        200,
        options.functions().map((f) => describeFunction(f, base, options.hostConfig)),
      );
      return true;
    }
    const match = /^\/admin\/functions\/([^/]+)$/i.exec(path.replace(/\/+$/, ''));
    if (!match) return false;
    const fn = findFunction(decodePathSegment(match[1] as string));
    if (!fn) {
      send(res, { status: 404 });
      return true;
    }
    if (method === 'GET') {
      sendJson(res, 200, describeFunction(fn, base, options.hostConfig));
      return true;
    }
    if (method !== 'POST') {
      send(res, { status: 405, headers: { allow: 'GET, POST' } });
      return true;
    }
    const input = parseAdminInput(await readBody(req, Math.min(maxBody, MAX_ADMIN_BODY)));
    if (input.error) {
      send(res, { status: 400, body: input.error });
      return true;
    }
    const invocation = adminInvocationInput(fn, input.value ?? '');
    if ('error' in invocation) {
      send(res, { status: 400, body: invocation.error });
      return true;
    }
    // Like the host: accepted now, runs in the background (its outcome goes to the log).
    void options.invoker.invoke(fn, invocation).then((outcome) => {
      if (!outcome.ok)
        options.logger.error(`[${fn.name}] admin invocation failed: ${describeError(outcome.error)}`);
    });
    send(res, { status: 202 });
    return true;
  }

  /**
   * `POST /admin/token` `{ "name" | "app", "roles", "minutes"? }`: a developer token of the emulated
   * built-in authentication (see builtInAuth.ts), for this host only. Loopback callers only: the
   * token stands for whoever it names.
   */
  async function mintToken(req: IncomingMessage, res: ServerResponse, method: string): Promise<void> {
    const auth = options.builtInAuth;
    if (!auth) {
      return send(res, { status: 404, body: 'Built-in authentication is not emulated by this host.' });
    }
    if (method !== 'POST') return send(res, { status: 405, headers: { allow: 'POST' } });
    if (!isLoopbackAddress(req.socket.remoteAddress)) {
      return send(res, { status: 403, body: 'Developer tokens are minted for loopback callers only.' });
    }
    const parsed = parseTokenRequest(await readBody(req, Math.min(maxBody, MAX_TOKEN_REQUEST_BODY)));
    if ('error' in parsed) return send(res, { status: 400, body: parsed.error });
    let minted: { token: string; expiresOn: Date };
    try {
      minted = auth.mint(parsed.identity, parsed.minutes);
    } catch (error) {
      return send(res, { status: 400, body: (error as Error).message });
    }
    const { identity } = parsed;
    sendJson(res, 200, {
      token: minted.token,
      expiresOn: minted.expiresOn.toISOString(),
      ...(identity.name === undefined ? { app: identity.appId } : { name: identity.name }),
      roles: identity.roles,
      usage: 'Authorization: Bearer <token>',
    });
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      const tooLarge = error instanceof BodyTooLargeError;
      // The path only: the query may carry a function key (`?code=`).
      if (!tooLarge) {
        options.logger.error(`request ${req.method} ${pathOf(req.url)} failed: ${describeError(error)}`);
      }
      if (res.headersSent) {
        res.end();
        return;
      }
      if (tooLarge) {
        // Answer first, then drop the rest of the upload: the connection closes after the 413.
        res.once('finish', () => req.destroy());
        send(res, { status: 413, headers: { connection: 'close' } });
        return;
      }
      send(res, { status: 500 });
    });
  });

  return {
    server,
    get url() {
      return url;
    },
    listen(port, host) {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          const address = server.address() as AddressInfo;
          url = `http://${host.includes(':') ? `[${host}]` : host}:${address.port}`;
          resolve();
        });
      });
    },
    mount(handler) {
      mounts.push(handler);
    },
    async close() {
      if (!server.listening) return;
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      // libuv releases closed handles in the close-callbacks phase, after 'close' is emitted; a timer
      // runs after that phase, so callers (tests counting handles) find them gone when this resolves.
      // (Without it, the handles of a host just stopped still count in the next host's snapshot.)
      await new Promise((resolve) => setTimeout(resolve, 0));
    },
    routes: httpRoutes,
  };
}

/** One function as Core Tools' / the host's admin API lists it (FunctionMetadataResponse). */
export function describeFunction(fn: RegisteredFunction, base: string, hostConfig: HostConfig) {
  const bindings = Object.entries(fn.metadata.bindings).map(([name, b]) => ({ ...b, name }));
  const isHttp = fn.trigger.type.toLowerCase() === 'httptrigger';
  const route = typeof fn.trigger.route === 'string' ? fn.trigger.route : fn.name;
  const prefix = hostConfig.routePrefix ? `${hostConfig.routePrefix}/` : '';
  let invokeUrlTemplate: string | null = null;
  if (isHttp) invokeUrlTemplate = `${base}/${prefix}${route}`;
  else if (fn.trigger.type.toLowerCase() === 'eventgridtrigger') {
    invokeUrlTemplate = `${base}/runtime/webhooks/eventgrid?functionName=${encodeURIComponent(fn.name)}`;
  }
  return {
    name: fn.name,
    href: `${base}/admin/functions/${encodeURIComponent(fn.name)}`,
    invoke_url_template: invokeUrlTemplate,
    language: 'node',
    config: { bindings, retry: fn.metadata.retryOptions },
    isDisabled: false,
    isDirect: true,
    isProxy: false,
    // Not in the host's shape; kept for people reading the list.
    triggerType: fn.trigger.type,
  };
}

function bundleOf(hostConfig: HostConfig): unknown {
  return hostConfig.raw.extensionBundle ?? null;
}

function parseAdminInput(body: Buffer): { value?: string; error?: string } {
  if (body.length === 0) return { value: '' };
  try {
    const parsed = JSON.parse(body.toString('utf8')) as { input?: unknown };
    if (parsed === null || typeof parsed !== 'object')
      return { error: 'The body must be a JSON object { "input": "..." }.' };
    if (parsed.input === undefined || parsed.input === null) return { value: '' };
    if (typeof parsed.input !== 'string') return { error: '"input" must be a string.' };
    return { value: parsed.input };
  } catch {
    return { error: 'The body must be a JSON object { "input": "..." }.' };
  }
}

/** The trigger value the host builds from an admin invocation's `input` string. */
export function adminInvocationInput(
  fn: RegisteredFunction,
  input: string,
): InvocationInput | { error: string } {
  const type = fn.trigger.type.toLowerCase();
  if (type === 'httptrigger') return { error: `"${fn.name}" is an HTTP function: call its route instead.` };
  if (type === 'timertrigger') {
    // Run now, outside the schedule: not past due, the status left unset.
    return { trigger: timerTriggerData({ status: { lastUpdated: new Date() }, isPastDue: false }) };
  }
  if (type === 'eventgridtrigger') {
    try {
      return { trigger: { json: JSON.stringify(JSON.parse(input)) } };
    } catch {
      return { error: `"input" of an Event Grid function must be the event as JSON text.` };
    }
  }
  return { trigger: { string: input } };
}

/** A token request is a few hundred bytes. */
const MAX_TOKEN_REQUEST_BODY = 16 * 1024;

function parseTokenRequest(
  body: Buffer,
): { identity: DeveloperIdentity; minutes: number } | { error: string } {
  const usage =
    'The body must be a JSON object { "name": "<user>" or "app": "<application id>", "roles": ["Operations.Read", ...], "minutes"?: <1-1440> }.';
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    return { error: usage };
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return { error: usage };
  const { name, app, roles, minutes, ...rest } = parsed as Record<string, unknown>;
  const unknown = Object.keys(rest);
  if (unknown.length > 0) return { error: `Unknown field(s) ${unknown.join(', ')}. ${usage}` };
  if (minutes !== undefined && typeof minutes !== 'number') return { error: usage };
  return {
    identity: {
      ...(name === undefined ? {} : { name: name as string }),
      ...(app === undefined ? {} : { appId: app as string }),
      roles: (roles ?? []) as string[],
    },
    minutes: (minutes as number | undefined) ?? DEFAULT_TOKEN_MINUTES,
  };
}

function isLoopbackAddress(address: string | undefined): boolean {
  return address === '::1' || /^(?:::ffff:)?127\./.test(address ?? '');
}

class BodyTooLargeError extends Error {}

/**
 * The request's URL, or undefined when its Host header is not a valid host (a request without one,
 * HTTP/1.0, is taken as addressed to the loopback host).
 */
function parseRequestUrl(req: IncomingMessage): URL | undefined {
  const host = req.headers.host || '127.0.0.1';
  if (!HOST_HEADER.test(host)) return undefined;
  try {
    return new URL(req.url ?? '/', `http://${host}`);
  } catch {
    return undefined;
  }
}

/** A path segment percent-decoded; an invalid escape is kept as it is (as Kestrel does). */
export function decodePathSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/** The request path without its query (which may hold `?code=<key>`), for logs. */
function pathOf(url: string | undefined): string {
  return redactText((url ?? '/').split('?')[0] as string);
}

/**
 * Reads the request body; rejects with `BodyTooLargeError` past `limit` bytes and stops keeping
 * what arrives (the request is destroyed only after the 413 has been sent).
 */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      if (size > limit) return;
      size += chunk.length;
      if (size > limit) {
        chunks.length = 0;
        reject(new BodyTooLargeError('request body too large'));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function send(res: ServerResponse, answer: WebhookResponse): void {
  res.statusCode = answer.status;
  for (const [name, value] of Object.entries(answer.headers ?? {})) res.setHeader(name, value);
  if (answer.body !== undefined && !res.hasHeader('content-type')) {
    res.setHeader('content-type', 'text/plain; charset=utf-8');
  }
  res.end(answer.body);
}

function sendJson(res: ServerResponse, status: number, value: unknown): void {
  send(res, {
    status,
    headers: { 'content-type': 'application/json; charset=utf-8' },
    body: JSON.stringify(value),
  });
}

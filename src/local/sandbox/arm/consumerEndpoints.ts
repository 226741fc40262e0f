/**
 * The HTTP endpoints the scenario's consumers expose, served by the sandbox on the hosts of their
 * URLs (which are never Azure or loopback hosts, so nothing real is shadowed):
 *
 * - a consumer's `healthUrl`: `GET` answers 200 `{ status: "Healthy", consumer, secretVersions,
 *   rolling }` when every key it holds is accepted by its resource, 503 `{ status: "Unhealthy", ... }`
 *   otherwise; `secretVersions` are the Key Vault versions its instances hold (two during a roll), so
 *   a caller can check that it runs on the version just published;
 * - a webhook consumer's `url` (a deployment pipeline, say): `POST` with a JSON object body starts a
 *   roll and answers 202 `{ id, status: "Running" }` with `Location: {url}/runs/{id}` (a consumer
 *   with `statusUrl: signed`: Logic Apps' `{origin}/workflows/.../runs/{id}/operations/status?...&sig=`,
 *   another path authorized by its own signature, as the async pattern of Logic Apps answers) (completion by
 *   polling: `GET` it for `{ id, status: Running | Succeeded | Failed, reason? }`); with a
 *   `callbackUrl` (absolute http or https URL) in the body, the sandbox also POSTs
 *   `{ id, consumer, status, reason? }` there when the roll ends, through the sandbox's own HTTP client
 *   (so a loopback URL reaches the local host). A body that is not a JSON object: 400.
 */
import { randomBytes } from 'node:crypto';
import type { HttpClient } from '@azure/core-rest-pipeline';
import { createHttpHeaders, createPipelineRequest } from '@azure/core-rest-pipeline';
import { isPlainObject, parseJson, type SandboxReply, type SandboxRequest } from '../http';
import type { ServiceEmulator } from '../router';
import type { ConsumerWorld, RollRecord } from './consumers';

const json = (status: number, body: unknown, headers: Record<string, string> = {}): SandboxReply => ({
  status,
  body,
  headers: { 'content-type': 'application/json; charset=utf-8', ...headers },
});

/** What the sandbox POSTs to a webhook's callback, and whether it arrived. */
export interface WebhookCallbackRecord {
  consumer: string;
  rollId: string;
  status: 'Succeeded' | 'Failed';
  /** The status the callback URL answered; null when the request failed. */
  answered: number | null;
}

export class ConsumerEndpoints implements ServiceEmulator {
  readonly name = 'consumer';
  private readonly callbacks: WebhookCallbackRecord[] = [];
  /** The `sig` of each signed status URL given out, by roll id (checked when it is read). */
  private readonly signatures = new Map<string, string>();

  constructor(
    private readonly consumers: () => ConsumerWorld,
    /** The hosts of every consumer URL (lower case). */
    private readonly hosts: ReadonlySet<string>,
    private readonly httpClient: () => HttpClient,
  ) {}

  matches(hostname: string): boolean {
    return this.hosts.has(hostname);
  }

  callbackRecords(): WebhookCallbackRecord[] {
    return this.callbacks.map((c) => ({ ...c }));
  }

  async handle(req: SandboxRequest): Promise<SandboxReply> {
    const world = this.consumers();
    const url = `${req.url.origin}${req.url.pathname}`;
    const health = world.find((c) => c.healthUrl !== undefined && sameUrl(c.healthUrl, url))[0];
    if (health) {
      if (req.method !== 'GET') return json(405, { error: 'use GET' }, { allow: 'GET' });
      const state = world.health(health.name)!;
      return json(state.healthy ? 200 : 503, {
        status: state.healthy ? 'Healthy' : 'Unhealthy',
        consumer: health.name,
        secretVersions: state.versions,
        rolling: state.rolling,
      });
    }
    const hook = world.find((c) => c.target.kind === 'webhook' && sameUrl(c.target.url, url))[0];
    if (hook) return this.trigger(req, hook.name);
    const run = world
      .find((c) => c.target.kind === 'webhook')
      .map((c) => ({ consumer: c, id: runId(c.target.kind === 'webhook' ? c.target.url : '', url) }))
      .find((x) => x.id !== undefined);
    if (run) {
      if (req.method !== 'GET') return json(405, { error: 'use GET' }, { allow: 'GET' });
      const record = world.roll(run.consumer.name, run.id!);
      if (!record) return json(404, { error: `no run ${run.id}` });
      return json(200, runBody(record));
    }
    const signed = world
      .find((c) => c.target.kind === 'webhook' && c.target.statusUrl === 'signed')
      .map((c) => ({ consumer: c, id: signedRunId(c.target.kind === 'webhook' ? c.target.url : '', url) }))
      .find((x) => x.id !== undefined);
    if (signed) {
      if (req.method !== 'GET') return json(405, { error: 'use GET' }, { allow: 'GET' });
      // As Logic Apps: the status URL's own signature authorizes the read.
      const expected = this.signatures.get(signed.id!);
      if (!expected || req.url.searchParams.get('sig') !== expected) {
        return json(401, {
          error: { code: 'DirectApiInvalidAuthorizationSignature', message: 'The provided sig is invalid.' },
        });
      }
      const record = world.roll(signed.consumer.name, signed.id!);
      if (!record) return json(404, { error: `no run ${signed.id}` });
      return json(200, runBody(record));
    }
    return json(404, { error: `nothing is served at ${url}` });
  }

  private trigger(req: SandboxRequest, consumer: string): SandboxReply {
    if (req.method !== 'POST') return json(405, { error: 'use POST' }, { allow: 'POST' });
    const parsed = parseJson(req.bodyText);
    if (!parsed.ok || !isPlainObject(parsed.value))
      return json(400, { error: 'the body must be a JSON object' });
    const callbackUrl = parsed.value.callbackUrl;
    let callback: URL | undefined;
    if (callbackUrl !== undefined) {
      try {
        callback = typeof callbackUrl === 'string' ? new URL(callbackUrl) : undefined;
      } catch {
        callback = undefined;
      }
      if (!callback || (callback.protocol !== 'https:' && callback.protocol !== 'http:')) {
        return json(400, { error: 'callbackUrl must be an absolute http or https URL' });
      }
    }
    const world = this.consumers();
    const record = world.startRoll(consumer, 'webhook');
    if (callback) {
      const target = callback.toString();
      world.onRollEnd(consumer, record.id, (ended) => this.callBack(consumer, target, ended));
    }
    const hook = world.get(consumer)!.target as { url: string; statusUrl: 'underHook' | 'signed' };
    let location = `${hook.url.replace(/\/+$/, '')}/runs/${record.id}`;
    if (hook.statusUrl === 'signed') {
      // Logic Apps' shape: another path of the trigger's origin, authorized by its own signature.
      const sig = randomBytes(32).toString('base64url');
      this.signatures.set(record.id, sig);
      location = `${new URL(hook.url).origin}${SIGNED_RUNS}${record.id}/operations/status?api-version=2016-10-01&sp=%2Fruns%2F${record.id}%2Fread&sv=1.0&sig=${sig}`;
    }
    return json(202, runBody(record), { location, 'retry-after': '0' });
  }

  private async callBack(consumer: string, url: string, record: RollRecord): Promise<void> {
    const status = record.status === 'succeeded' ? 'Succeeded' : 'Failed';
    const entry: WebhookCallbackRecord = { consumer, rollId: record.id, status, answered: null };
    this.callbacks.push(entry);
    try {
      const response = await this.httpClient().sendRequest(
        createPipelineRequest({
          url,
          method: 'POST',
          headers: createHttpHeaders({ 'content-type': 'application/json' }),
          body: JSON.stringify({
            id: record.id,
            consumer,
            status,
            ...(record.reason ? { reason: record.reason } : {}),
          }),
          timeout: 30_000,
          // A loopback callback (the local host) is plain http, as the local host serves.
          allowInsecureConnection: new URL(url).protocol === 'http:',
        }),
      );
      entry.answered = response.status;
    } catch {
      entry.answered = null;
    }
  }
}

function sameUrl(a: string, b: string): boolean {
  const norm = (u: string) => u.replace(/\/+$/, '').toLowerCase();
  return norm(a) === norm(b);
}

/** Where a `signed` webhook's run statuses are served (Logic Apps: `/workflows/{id}/runs/{run}/...`). */
const SIGNED_RUNS = '/workflows/sandbox/runs/';

/** `{origin}/workflows/sandbox/runs/{id}/operations/status` -> id. */
function signedRunId(hookUrl: string, url: string): string | undefined {
  const base = `${new URL(hookUrl).origin}${SIGNED_RUNS}`.toLowerCase();
  if (!url.toLowerCase().startsWith(base)) return undefined;
  const rest = url.slice(base.length).split('/');
  return rest.length === 3 && rest[0] !== '' && rest[1] === 'operations' && rest[2] === 'status'
    ? rest[0]
    : undefined;
}

/** `{url}/runs/{id}` -> id. */
function runId(hookUrl: string, url: string): string | undefined {
  const base = `${hookUrl.replace(/\/+$/, '')}/runs/`.toLowerCase();
  if (!url.toLowerCase().startsWith(base)) return undefined;
  const id = url.slice(base.length);
  return id !== '' && !id.includes('/') ? id : undefined;
}

function runBody(record: RollRecord) {
  const status =
    record.status === 'running' ? 'Running' : record.status === 'succeeded' ? 'Succeeded' : 'Failed';
  return { id: record.id, status, ...(record.reason ? { reason: record.reason } : {}) };
}

/**
 * Where requests to any non-Azure host land in the sandbox (Teams incoming webhooks, Teams
 * Workflows / Logic Apps triggers, generic webhooks): recorded for people and tests to read,
 * answered 200. Credentials are not kept: authorization-like headers are dropped, and the URL is
 * recorded as its origin and first path segment only, because webhook URLs carry their credential
 * in the path (`/webhookb2/<guid>@<guid>/IncomingWebhook/<secret>/<guid>`) or the query (`sig=`),
 * and the redaction registry cannot know every such value.
 */
import { redactText } from '../../lib/core/redact';
import type { SandboxClock } from './clock';
import type { SandboxReply, SandboxRequest } from './http';
import type { ServiceEmulator } from './router';

export interface WebhookRecord {
  method: string;
  /** Origin and first path segment; the rest of the path and the query are masked. */
  url: string;
  headers: Record<string, string>;
  /** Parsed JSON when the body is JSON, the text otherwise. */
  body: unknown;
  time: string;
}

const MASK = '***';

/**
 * `https://host/first/***` (or the bare origin): enough to tell which webhook was called, nothing
 * that would let a reader call it.
 */
function maskWebhookUrl(url: URL): string {
  const segments = url.pathname.split('/').filter((segment) => segment !== '');
  if (segments.length === 0) return url.search === '' ? url.origin : `${url.origin}/?${MASK}`;
  const rest = segments.length > 1 || url.search !== '' ? `/${MASK}` : '';
  return `${url.origin}/${segments[0]}${rest}`;
}

const DROPPED_HEADERS = new Set([
  'authorization',
  'aeg-sas-key',
  'aeg-sas-token',
  'x-functions-key',
  'cookie',
  'proxy-authorization',
]);

export class WebhookSink implements ServiceEmulator {
  readonly name = 'webhook-sink';
  private readonly records: WebhookRecord[] = [];

  constructor(private readonly clock: SandboxClock) {}

  matches(): boolean {
    return true;
  }

  received(): WebhookRecord[] {
    return this.records.map((r) => structuredClone(r));
  }

  async handle(req: SandboxRequest): Promise<SandboxReply> {
    const headers: Record<string, string> = {};
    for (const [name, value] of req.headers) {
      if (!DROPPED_HEADERS.has(name.toLowerCase())) headers[name.toLowerCase()] = value;
    }
    let body: unknown = req.bodyText;
    if (req.bodyText !== undefined) {
      try {
        body = JSON.parse(req.bodyText);
      } catch {
        body = req.bodyText;
      }
    }
    this.records.push({
      method: req.method,
      // The registry still applies: a first segment can be a registered secret too.
      url: redactText(maskWebhookUrl(req.url)),
      headers,
      body,
      time: this.clock.now().toISOString(),
    });
    return { status: 200, body: '1', headers: { 'content-type': 'text/plain; charset=utf-8' } };
  }
}

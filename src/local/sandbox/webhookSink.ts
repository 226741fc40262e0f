/**
 * Where requests to any non-Azure host land in the sandbox (Teams incoming webhooks, generic
 * webhooks): recorded for people and tests to read, answered 200. Credentials are not kept:
 * authorization-like headers are dropped and signature query parameters are masked.
 */
import { redactText } from '../../lib/core/redact';
import type { SandboxClock } from './clock';
import type { SandboxReply, SandboxRequest } from './http';
import type { ServiceEmulator } from './router';

export interface WebhookRecord {
  method: string;
  url: string;
  headers: Record<string, string>;
  /** Parsed JSON when the body is JSON, the text otherwise. */
  body: unknown;
  time: string;
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
      url: redactText(req.url.toString()),
      headers,
      body,
      time: this.clock.now().toISOString(),
    });
    return { status: 200, body: '1', headers: { 'content-type': 'text/plain; charset=utf-8' } };
  }
}

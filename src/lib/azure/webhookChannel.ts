import type { HttpClient } from '@azure/core-rest-pipeline';
import { DependencyError, TransientError } from '../core/errors';
import { isLoopbackHttpUrl } from '../core/urls';
import { toCloudEvent, toTeamsMessage } from '../notify/format';
import type { Notification, NotificationChannel } from '../ports/notifier';
import { isTransientTransportError } from './errors';

const TIMEOUT_MS = 10_000;

/**
 * Posts notifications to an HTTPS webhook: a Teams channel (an Adaptive Card message) or a generic
 * receiver (a CloudEvent in structured mode). The URL is a credential (it embeds a signature) and
 * is never logged or put in an error. 429 / 5xx / network failures are retryable.
 */
export class WebhookChannel implements NotificationChannel {
  constructor(
    readonly name: string,
    readonly kind: 'teams' | 'webhook',
    private readonly url: string,
    private readonly httpClient: HttpClient,
    private readonly source: string,
  ) {}

  async send(notification: Notification, options: { abortSignal?: AbortSignal } = {}): Promise<void> {
    const teams = this.kind === 'teams';
    const body = teams ? toTeamsMessage(notification) : toCloudEvent(notification, this.source);
    // Loaded on the first post, not when the app starts (see src/lib/app/deps.ts).
    const { createHttpHeaders, createPipelineRequest } = await import('@azure/core-rest-pipeline');
    const request = createPipelineRequest({
      url: this.url,
      method: 'POST',
      headers: createHttpHeaders({
        'content-type': teams ? 'application/json' : 'application/cloudevents+json; charset=utf-8',
        'ce-id': notification.id,
      }),
      body: JSON.stringify(body),
      timeout: TIMEOUT_MS,
      abortSignal: options.abortSignal,
      // Settings accept plain http only for loopback receivers (local development and tests).
      allowInsecureConnection: isLoopbackHttpUrl(this.url),
    });
    let status: number;
    try {
      status = (await this.httpClient.sendRequest(request)).status;
    } catch (error) {
      // The SDK's message may quote the URL, which is a credential: keep only the error's kind.
      const kind = (error as { code?: string; name?: string }).code ?? (error as Error).name ?? 'Error';
      const message = `posting to ${this.kind} channel ${this.name} failed: ${kind}`;
      if (isTransientTransportError(error))
        throw new TransientError(message, { metadata: { channel: this.name } });
      throw new DependencyError(message, { retryable: false, metadata: { channel: this.name } });
    }
    if (status >= 200 && status < 300) return;
    const message = `posting to ${this.kind} channel ${this.name} failed with ${status}`;
    if (status === 408 || status === 429 || status >= 500)
      throw new TransientError(message, { metadata: { channel: this.name, status } });
    throw new DependencyError(message, { retryable: false, metadata: { channel: this.name, status } });
  }
}

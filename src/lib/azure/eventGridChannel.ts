import type { TokenCredential } from '@azure/core-auth';
import type { HttpClient } from '@azure/core-rest-pipeline';
import { redactText } from '../core/redact';
import { notificationData } from '../notify/format';
import type { Notification, NotificationChannel } from '../ports/notifier';
import { fromAzureError } from './errors';

/** The SDK, loaded on the first send (the types of `import()`, ESM, differ from those of `import type`). */
const loadSdk = () => import('@azure/eventgrid');
type Publisher = InstanceType<Awaited<ReturnType<typeof loadSdk>>['EventGridPublisherClient']>;

/**
 * Publishes notifications as CloudEvents 1.0 to an Event Grid custom topic with Microsoft Entra
 * auth. Needs the `EventGrid Data Sender` role on the topic. Retries are the SDK's (3); a failure
 * after them throws a `TransientError` (5xx / 429 / network) or a non-retryable `DependencyError`.
 * The CloudEvent id is the notification id, so a retried publish can be de-duplicated downstream.
 */
export class EventGridChannel implements NotificationChannel {
  readonly kind = 'eventGrid';
  /** Built, with the SDK loaded (`import()`), on the first send: not when the app starts. */
  private client: Promise<Publisher> | undefined;

  constructor(
    readonly name: string,
    private readonly endpoint: string,
    private readonly credential: TokenCredential,
    private readonly source: string,
    private readonly options: { httpClient?: HttpClient } = {},
  ) {}

  private publisher(): Promise<Publisher> {
    if (!this.client) {
      const client: Promise<Publisher> = loadSdk().then(
        ({ EventGridPublisherClient }) =>
          new EventGridPublisherClient(this.endpoint, 'CloudEvent', this.credential, {
            httpClient: this.options.httpClient,
            retryOptions: { maxRetries: 3, retryDelayInMs: 200, maxRetryDelayInMs: 2000 },
          }),
      );
      // A failed load is tried again on the next send.
      client.catch(() => {
        if (this.client === client) this.client = undefined;
      });
      this.client = client;
    }
    return this.client;
  }

  async send(notification: Notification, options: { abortSignal?: AbortSignal } = {}): Promise<void> {
    try {
      await (await this.publisher()).send(
        [
          {
            id: notification.id,
            type: notification.type,
            source: this.source,
            subject: redactText(notification.subject),
            time: notification.time,
            datacontenttype: 'application/json',
            data: notificationData(notification),
          },
        ],
        { abortSignal: options.abortSignal },
      );
    } catch (error) {
      throw fromAzureError(error, `publishing ${notification.type} to Event Grid channel ${this.name}`);
    }
  }
}

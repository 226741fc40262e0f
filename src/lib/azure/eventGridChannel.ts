import type { TokenCredential } from '@azure/core-auth';
import type { HttpClient } from '@azure/core-rest-pipeline';
import { EventGridPublisherClient } from '@azure/eventgrid';
import { redactText } from '../core/redact';
import { notificationData } from '../notify/format';
import type { Notification, NotificationChannel } from '../ports/notifier';
import { fromAzureError } from './errors';

/**
 * Publishes notifications as CloudEvents 1.0 to an Event Grid custom topic with Microsoft Entra
 * auth. Needs the `EventGrid Data Sender` role on the topic. Retries are the SDK's (3); a failure
 * after them throws a `TransientError` (5xx / 429 / network) or a non-retryable `DependencyError`.
 * The CloudEvent id is the notification id, so a retried publish can be de-duplicated downstream.
 */
export class EventGridChannel implements NotificationChannel {
  readonly kind = 'eventGrid';
  private readonly client: EventGridPublisherClient<'CloudEvent'>;

  constructor(
    readonly name: string,
    endpoint: string,
    credential: TokenCredential,
    private readonly source: string,
    options: { httpClient?: HttpClient } = {},
  ) {
    this.client = new EventGridPublisherClient(endpoint, 'CloudEvent', credential, {
      httpClient: options.httpClient,
      retryOptions: { maxRetries: 3, retryDelayInMs: 200, maxRetryDelayInMs: 2000 },
    });
  }

  async send(notification: Notification, options: { abortSignal?: AbortSignal } = {}): Promise<void> {
    try {
      await this.client.send(
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

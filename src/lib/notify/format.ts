import { redact } from '../core/redact';
import type { Notification, Severity } from '../ports/notifier';

const SEVERITY_RANK: Record<Severity, number> = { info: 0, warning: 1, critical: 2 };

export function severityAtLeast(severity: Severity, minimum: Severity): boolean {
  return SEVERITY_RANK[severity] >= SEVERITY_RANK[minimum];
}

/**
 * A CloudEvents 1.0 structured-mode envelope of a notification (generic webhooks). Redacted like
 * every payload built here: values masked, names (secret, vault, resource, entity) kept.
 */
export function toCloudEvent(notification: Notification, source: string): Record<string, unknown> {
  return redact({
    specversion: '1.0',
    id: notification.id,
    source,
    type: notification.type,
    subject: notification.subject,
    time: notification.time.toISOString(),
    datacontenttype: 'application/json',
    data: notificationData(notification),
  });
}

/**
 * The `data` of the CloudEvent published for a notification, redacted: a registered value or a
 * credential fragment anywhere in it is masked, and every name is kept.
 */
export function notificationData(notification: Notification): Record<string, unknown> {
  // The notification's own fields win over same-named keys a use case put in `data`.
  return redact({
    ...notification.data,
    severity: notification.severity,
    title: notification.title,
    summary: notification.summary,
    facts: notification.facts,
    correlationId: notification.correlationId,
  });
}

const COLOR: Record<Severity, string> = { info: 'Accent', warning: 'Warning', critical: 'Attention' };

/**
 * A Teams message carrying an Adaptive Card (1.4), the payload that Teams incoming webhooks and
 * Workflows ("Post to a channel when a webhook request is received") accept. Redacted: the facts
 * show their titles and names (`Secret: db-password`), values in them or in the summary are masked.
 */
export function toTeamsMessage(notification: Notification): Record<string, unknown> {
  return redact({
    type: 'message',
    attachments: [
      {
        contentType: 'application/vnd.microsoft.card.adaptive',
        contentUrl: null,
        content: {
          $schema: 'http://adaptivecards.io/schemas/adaptive-card.json',
          type: 'AdaptiveCard',
          version: '1.4',
          msteams: { width: 'Full' },
          body: [
            {
              type: 'TextBlock',
              text: notification.title,
              weight: 'Bolder',
              size: 'Medium',
              wrap: true,
              color: COLOR[notification.severity],
            },
            { type: 'TextBlock', text: notification.summary, wrap: true },
            {
              type: 'FactSet',
              facts: [
                ...Object.entries(notification.facts).map(([title, value]) => ({ title, value })),
                { title: 'Severity', value: notification.severity },
                { title: 'Correlation id', value: notification.correlationId },
              ],
            },
          ],
        },
      },
    ],
  });
}

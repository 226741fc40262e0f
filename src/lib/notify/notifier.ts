import { isRetryable } from '../core/errors';
import type { Logger } from '../core/logging';
import { redact, redactText } from '../core/redact';
import type { ChannelResult, Notification, NotificationChannel, Notifier, Severity } from '../ports/notifier';
import { severityAtLeast } from './format';

export interface ChannelEntry {
  channel: NotificationChannel;
  minSeverity: Severity;
}

/**
 * Fans a notification out to named channels. One failing channel never stops the others; each
 * result says whether a retry may help, so the caller can retry just the failed ones.
 */
export function createNotifier(entries: ChannelEntry[], logger: Logger): Notifier {
  const byName = new Map(entries.map((e) => [e.channel.name, e]));
  return {
    async notify(notification: Notification, options): Promise<ChannelResult[]> {
      return Promise.all(
        options.channels.map(async (name): Promise<ChannelResult> => {
          const entry = byName.get(name);
          if (!entry) return { channel: name, status: 'failed', retryable: false, error: 'unknown channel' };
          if (!severityAtLeast(notification.severity, entry.minSeverity))
            return { channel: name, status: 'filtered' };
          try {
            // Second line of defence for every channel: values are masked, names are kept.
            await entry.channel.send(redact(notification), { abortSignal: options.abortSignal });
            return { channel: name, status: 'sent' };
          } catch (error) {
            const message = redactText(error instanceof Error ? error.message : String(error));
            // The one rule of the error hierarchy, so a programming error settles like everywhere else.
            const retryable = isRetryable(error);
            // The logger writes the error with its redacted stack and cause chain (`describeError`).
            logger.warn('notification channel failed', {
              operation: 'notify',
              target: notification.subject,
              channel: name,
              retryable,
              error,
            });
            return { channel: name, status: 'failed', retryable, error: message };
          }
        }),
      );
    },
  };
}

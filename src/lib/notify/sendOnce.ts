import type { OnceWork } from '../core/once';
import type { ChannelResult, Notification, Notifier } from '../ports/notifier';

/** What the channels of one notification got, kept as the progress of the work's idempotency key. */
interface ChannelProgress {
  channels: Record<string, ChannelResult>;
}

/**
 * Sends `notification` to each channel at most once across the attempts of the same logical work
 * (one idempotency key, `runOnce`): every channel's result is the work's progress, so that when a
 * channel fails transiently the work fails, its key is released with what was sent, and the retry
 * sends to the channels that did not get it only. A channel sent, filtered or failed for good
 * before is answered from that progress. Never throws for a failing channel: the result says so.
 * Costs no storage call of its own (the progress is written only when the work gives its key up).
 * Shared by every use case that notifies (secret events, alerts).
 */
export async function sendToChannelsOnce(
  notification: Notification,
  channels: string[],
  deps: { notifier: Notifier },
  once: OnceWork,
  ctx: { abortSignal?: AbortSignal },
): Promise<ChannelResult[]> {
  const before = progressOf(once.progress);
  const done = (r: ChannelResult | undefined) => r !== undefined && !(r.status === 'failed' && r.retryable);
  const pending = channels.filter((c) => !done(before[c]));
  const sent =
    pending.length === 0
      ? []
      : await deps.notifier.notify(notification, { channels: pending, abortSignal: ctx.abortSignal });
  const now: Record<string, ChannelResult> = { ...before };
  pending.forEach((channel, i) => {
    now[channel] = sent[i] ?? { channel, status: 'failed', retryable: false, error: 'no result' };
  });
  once.setProgress({ channels: now } satisfies ChannelProgress);
  return channels.map((channel) => now[channel]!);
}

function progressOf(progress: unknown): Record<string, ChannelResult> {
  const channels = (progress as Partial<ChannelProgress> | undefined)?.channels;
  return channels && typeof channels === 'object' ? channels : {};
}

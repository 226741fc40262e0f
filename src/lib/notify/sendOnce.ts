import { CompletionPendingError, InProgressError } from '../core/errors';
import { runOnce } from '../core/once';
import type { ChannelResult, Notification, Notifier } from '../ports/notifier';
import type { IdempotencyStore } from '../ports/state';

/**
 * Sends `notification` to each channel at most once across retries of the same logical work: one
 * idempotency key per channel (`{key}|channel|{name}`), through `runOnce`. A channel sent (or failed
 * for good) before answers its stored result without sending again; a transient failure leaves its
 * key free (nothing was done) so that a retry sends to that channel only; a send whose record could
 * not be written keeps its claim, and a retry records it instead of sending again. Never throws for a
 * failing channel: the result says so. Shared by every use case that notifies (secret events, alerts).
 */
export async function sendToChannelsOnce(
  notification: Notification,
  channels: string[],
  key: string,
  deps: { idempotency: IdempotencyStore; notifier: Notifier; idempotencyTtlMs: number; claimLeaseMs: number },
  ctx: { attemptId: string; abortSignal?: AbortSignal },
): Promise<ChannelResult[]> {
  return Promise.all(
    channels.map(async (channel): Promise<ChannelResult> => {
      try {
        const once = await runOnce<ChannelResult>(
          deps.idempotency,
          `${key}|channel|${channel}`,
          {
            owner: ctx.attemptId,
            ttlMs: deps.idempotencyTtlMs,
            leaseMs: deps.claimLeaseMs,
            busyMessage: 'another attempt is sending',
            summarize: (result) => result,
            consumed: (result) => !(result.status === 'failed' && result.retryable),
            abortSignal: ctx.abortSignal,
          },
          async () => {
            const [result] = await deps.notifier.notify(notification, {
              channels: [channel],
              abortSignal: ctx.abortSignal,
            });
            return result ?? { channel, status: 'failed', retryable: false, error: 'no result' };
          },
        );
        return once.status === 'duplicate' ? (once.previous as ChannelResult) : once.result;
      } catch (error) {
        if (error instanceof InProgressError) {
          return { channel, status: 'failed', retryable: true, error: 'another attempt is sending' };
        }
        // Sent; only its record is pending (kept in this process for a retry to write).
        if (error instanceof CompletionPendingError) return { channel, status: 'sent' };
        throw error;
      }
    }),
  );
}

import type { ChannelResult, Notification, Notifier } from '../ports/notifier';
import type { IdempotencyStore } from '../ports/state';

const CLAIM_LEASE_MS = 5 * 60_000;

/**
 * Sends `notification` to each channel at most once across retries of the same logical work: one
 * idempotency key per channel (`{key}|channel|{name}`). A channel sent (or failed for good) before
 * answers its stored result without sending again; a transient failure releases its key so that a
 * retry sends to that channel only. Never throws for a failing channel: the result says so.
 * Shared by every use case that notifies (secret events, alerts).
 */
export async function sendToChannelsOnce(
  notification: Notification,
  channels: string[],
  key: string,
  deps: { idempotency: IdempotencyStore; notifier: Notifier; idempotencyTtlMs: number },
  ctx: { attemptId: string; abortSignal?: AbortSignal },
): Promise<ChannelResult[]> {
  return Promise.all(
    channels.map(async (channel): Promise<ChannelResult> => {
      const channelKey = `${key}|channel|${channel}`;
      const claim = await deps.idempotency.claim(channelKey, {
        owner: ctx.attemptId,
        leaseMs: CLAIM_LEASE_MS,
        abortSignal: ctx.abortSignal,
      });
      if (claim.status === 'completed') return claim.result as ChannelResult;
      if (claim.status === 'inProgress') {
        return { channel, status: 'failed', retryable: true, error: 'another attempt is sending' };
      }
      const [result] = await deps.notifier.notify(notification, {
        channels: [channel],
        abortSignal: ctx.abortSignal,
      });
      const settled: ChannelResult = result ?? {
        channel,
        status: 'failed',
        retryable: false,
        error: 'no result',
      };
      if (settled.status === 'failed' && settled.retryable) {
        await deps.idempotency.release(channelKey, { owner: ctx.attemptId });
      } else {
        await deps.idempotency.complete(channelKey, {
          owner: ctx.attemptId,
          result: settled,
          ttlMs: deps.idempotencyTtlMs,
          abortSignal: ctx.abortSignal,
        });
      }
      return settled;
    }),
  );
}

/** Archive ids of dead letters: stable, readable, unique per message. */
import { createHash } from 'node:crypto';

/** `{entity}.{sequence number}.{fingerprint}`: the archive id of a dead letter. */
export const DEAD_LETTER_ID = /^([a-z][a-z0-9-]{0,30}[a-z0-9])\.(\d{1,20})\.([0-9a-f]{6})$/;

/**
 * What tells two messages of one sequence number apart (an entity deleted and created again
 * restarts its sequence numbers): 6 hex digits of sha256(message id, enqueued time).
 */
export function fingerprintOf(messageId: string, enqueuedTime: Date): string {
  return createHash('sha256')
    .update(messageId)
    .update('\u0000')
    .update(enqueuedTime.toISOString())
    .digest('hex')
    .slice(0, 6);
}

/** The archive id of a message of an entity. */
export function deadLetterId(
  entity: string,
  sequenceNumber: string,
  messageId: string,
  enqueuedTime: Date,
): string {
  return `${entity}.${BigInt(sequenceNumber).toString()}.${fingerprintOf(messageId, enqueuedTime)}`;
}

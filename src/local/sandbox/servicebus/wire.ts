import { type Message, string_to_uuid, types } from 'rhea';
import type { StoredMessage } from './store';

/** Helpers shared by the broker's links and its `$management` node: the Service Bus wire shapes. */

/** The message as a receiver gets it: the sent message plus the broker's annotations and header. */
export function outgoingMessage(entry: StoredMessage, lockedUntil: Date | undefined): Message {
  const annotations: Record<string, unknown> = {
    ...(entry.message.message_annotations ?? {}),
    'x-opt-sequence-number': types.wrap_long(entry.sequenceNumber),
    'x-opt-enqueue-sequence-number': types.wrap_long(entry.sequenceNumber),
    'x-opt-enqueued-time': entry.enqueuedTime,
    'x-opt-message-state': types.wrap_int(entry.state === 'deferred' ? 1 : 0),
  };
  if (lockedUntil) annotations['x-opt-locked-until'] = lockedUntil;
  if (entry.deadLetterSource) annotations['x-opt-deadletter-source'] = entry.deadLetterSource;
  return {
    ...entry.message,
    delivery_count: entry.deliveryCount,
    message_annotations: annotations,
  } as Message;
}

/**
 * The delivery tag carrying a lock token. The SDK reads the tag as a .NET-ordered GUID
 * (`reorderLockToken`), so the first three groups are byte-swapped here to round-trip.
 */
export function lockTokenTag(token: string): Buffer {
  return reorderGuidBytes(Buffer.from(string_to_uuid(token)));
}

function reorderGuidBytes(b: Buffer): Buffer {
  return Buffer.from([b[3]!, b[2]!, b[1]!, b[0]!, b[5]!, b[4]!, b[7]!, b[6]!, ...b.subarray(8)]);
}

/** A uuid's 16 bytes (as a `$management` request carries a lock token) in canonical text form. */
export function uuidBytesToString(value: unknown): string {
  const hex = Buffer.from(value as Uint8Array).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** A lock token as a `$management` reply carries it (an AMQP uuid). */
export function wrapLockToken(token: string): unknown {
  return types.wrap_uuid(Buffer.from(string_to_uuid(token)));
}

/** .NET ticks (100 ns since 0001-01-01) of a date, as an AMQP long: how Service Bus sends `com.microsoft:locked-until-utc`. */
export function ticksOf(date: Date): unknown {
  const ticks = BigInt(date.getTime()) * 10_000n + 621_355_968_000_000_000n;
  const bytes = Buffer.alloc(8);
  bytes.writeBigInt64BE(ticks);
  return types.wrap_long(bytes as unknown as number);
}

/** A value as a list: AMQP sends a single item where a list is expected, and nothing for an empty one. */
export function asArray(value: unknown): unknown[] {
  if (Array.isArray(value)) return value;
  if (value === undefined || value === null) return [];
  return [value];
}

/** An AMQP long as a number (rhea decodes longs beyond 2^53 as 8 bytes). */
export function longValue(value: unknown): number | undefined {
  if (typeof value === 'number') return value;
  if (Buffer.isBuffer(value)) return Number(value.readBigInt64BE(0));
  if (typeof value === 'bigint') return Number(value);
  return undefined;
}

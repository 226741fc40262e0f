/**
 * How the dead-letter archive writes what a message carries into Table properties and blobs, and
 * reads it back unchanged: application properties keep their types (dates and bytes are tagged),
 * AMQP value and sequence bodies keep their section type, ids are stable and readable.
 */
import { createHash } from 'node:crypto';
import { ValidationError } from '../core/errors';
import { DEAD_LETTER_ID } from '../deadletters/ids';
import type { ApplicationPropertyValue, BusMessageBody } from '../ports/messageBus';

export { DEAD_LETTER_ID, deadLetterId, fingerprintOf } from '../deadletters/ids';

/** The Table keys of an archive id (row keys sort by sequence number); undefined for a malformed id. */
export function keysOfId(id: string): { partitionKey: string; rowKey: string } | undefined {
  const match = DEAD_LETTER_ID.exec(id);
  if (!match) return undefined;
  return { partitionKey: match[1]!, rowKey: `m.${match[2]!.padStart(20, '0')}.${match[3]!}` };
}

/** The archive id of a message row. */
export function idOfKeys(partitionKey: string, rowKey: string): string {
  const [, seq, fp] = rowKey.split('.');
  return `${partitionKey}.${BigInt(seq!).toString()}.${fp}`;
}

type Tagged = { $date: string } | { $bytes: string } | { $bigint: string };

function encodeValue(value: unknown, depth = 0): unknown {
  if (depth > 64) throw new ValidationError('a message value is nested too deeply to archive');
  if (value instanceof Date) return { $date: value.toISOString() } satisfies Tagged;
  if (value instanceof Uint8Array) return { $bytes: Buffer.from(value).toString('base64') } satisfies Tagged;
  if (typeof value === 'bigint') return { $bigint: value.toString() } satisfies Tagged;
  if (Array.isArray(value)) return value.map((v) => encodeValue(v, depth + 1));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = encodeValue(v, depth + 1);
    return out;
  }
  if (typeof value === 'number' && !Number.isFinite(value)) return { $number: String(value) };
  return value;
}

function decodeValue(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(decodeValue);
  if (value !== null && typeof value === 'object') {
    const keys = Object.keys(value);
    const v = value as Record<string, unknown>;
    if (keys.length === 1 && typeof v.$date === 'string') return new Date(v.$date);
    if (keys.length === 1 && typeof v.$bytes === 'string')
      return new Uint8Array(Buffer.from(v.$bytes, 'base64'));
    if (keys.length === 1 && typeof v.$bigint === 'string') return BigInt(v.$bigint);
    if (keys.length === 1 && typeof v.$number === 'string') return Number(v.$number);
    const out: Record<string, unknown> = {};
    for (const [k, inner] of Object.entries(v)) out[k] = decodeValue(inner);
    return out;
  }
  return value;
}

/** Application properties as JSON text, dates tagged so they come back as dates. */
export function encodeProperties(properties: Record<string, ApplicationPropertyValue>): string {
  return JSON.stringify(encodeValue(properties));
}

export function decodeProperties(text: string | undefined): Record<string, ApplicationPropertyValue> {
  if (!text) return {};
  return decodeValue(JSON.parse(text)) as Record<string, ApplicationPropertyValue>;
}

/** The bytes a body is stored as: a data body's own bytes; a value or sequence body's tagged JSON. */
export function bodyBytes(body: BusMessageBody): Uint8Array {
  switch (body.type) {
    case 'data':
      return body.bytes;
    case 'value':
      return new Uint8Array(Buffer.from(JSON.stringify(encodeValue(body.value)) ?? 'null', 'utf8'));
    case 'sequence':
      return new Uint8Array(Buffer.from(JSON.stringify(encodeValue(body.sequences)), 'utf8'));
  }
}

/** The body back from its stored bytes and section type. */
export function bodyFromBytes(type: BusMessageBody['type'], bytes: Uint8Array): BusMessageBody {
  if (type === 'data') return { type, bytes };
  const decoded = decodeValue(JSON.parse(Buffer.from(bytes).toString('utf8')));
  return type === 'value' ? { type, value: decoded } : { type, sequences: decoded as unknown[][] };
}

export function sha256Of(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

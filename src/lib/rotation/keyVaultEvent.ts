import { ValidationError } from '../core/errors';

/** Key Vault secret lifecycle event types the app handles (Event Grid `Microsoft.KeyVault.*`). */
export const SECRET_EVENT_TYPES = [
  'Microsoft.KeyVault.SecretNearExpiry',
  'Microsoft.KeyVault.SecretExpired',
  'Microsoft.KeyVault.SecretNewVersionCreated',
] as const;
export type SecretEventType = (typeof SECRET_EVENT_TYPES)[number];

/** A Key Vault secret event, normalized from either Event Grid or CloudEvents schema. */
export interface SecretEvent {
  id: string;
  type: SecretEventType;
  time: Date;
  /** `/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.KeyVault/vaults/{vault}` */
  source: string;
  /** How it arrived: an Event Grid delivery (either schema), or found by the safety-net sweep. */
  schema: 'EventGridSchema' | 'CloudEventSchemaV1_0' | 'Sweep';
  vaultName: string;
  /** `https://{vault}.vault.azure.net` (from the data's `Id`). */
  vaultUrl: string;
  secretName: string;
  version: string;
  notBefore?: Date;
  expiresOn?: Date;
}

const MAX_EVENT_FIELD = 1024;

/**
 * Parses one event delivered by Event Grid (either schema) into a `SecretEvent`, or throws a
 * `ValidationError` listing every problem. Tolerates the published quirks: PascalCase or camelCase
 * data keys, keys and values with stray spaces (`"ObjectName "`, `" ee05..."`), NBF / EXP as numbers
 * or numeric strings, absent NBF / EXP (null in the Event Grid spec).
 */
export function parseSecretEvent(raw: unknown): SecretEvent {
  const problems: string[] = [];
  if (!isObject(raw)) throw new ValidationError('event is not a JSON object', ['event: expected an object']);
  const envelope = normalizeKeys(raw);
  const isCloudEvent = typeof envelope.specversion === 'string';
  const id = str(envelope.id);
  const type = str(isCloudEvent ? envelope.type : envelope.eventtype);
  const timeText = str(isCloudEvent ? envelope.time : envelope.eventtime);
  const source = str(isCloudEvent ? envelope.source : envelope.topic) ?? '';

  if (!id) problems.push('id: required');
  if (!type) problems.push(`${isCloudEvent ? 'type' : 'eventType'}: required`);
  else if (!(SECRET_EVENT_TYPES as readonly string[]).includes(type)) {
    problems.push(
      `${isCloudEvent ? 'type' : 'eventType'}: '${clip(type)}' is not a Key Vault secret event this app handles`,
    );
  }
  const time = timeText ? new Date(timeText) : undefined;
  if (!time || Number.isNaN(time.getTime()))
    problems.push(`${isCloudEvent ? 'time' : 'eventTime'}: must be an ISO 8601 time`);

  const data = isObject(envelope.data) ? normalizeKeys(envelope.data) : undefined;
  if (!data) problems.push('data: required object');
  const objectType = str(data?.objecttype);
  if (data && objectType && objectType.toLowerCase() !== 'secret')
    problems.push(`data.ObjectType: '${clip(objectType)}' is not Secret`);
  const secretId = str(data?.id);
  const parsedId = secretId ? parseSecretId(secretId) : undefined;
  if (data && !parsedId)
    problems.push(
      'data.Id: must be a secret identifier https://{vault}.vault.azure.net/secrets/{name}/{version}',
    );
  const secretName = str(data?.objectname) ?? parsedId?.name;
  const version = str(data?.version) ?? parsedId?.version;
  const vaultName = str(data?.vaultname) ?? parsedId?.vaultName;
  if (data && !secretName) problems.push('data.ObjectName: required');
  if (data && !version) problems.push('data.Version: required');
  if (parsedId && secretName && parsedId.name.toLowerCase() !== secretName.toLowerCase()) {
    problems.push('data.ObjectName: does not match the name in data.Id');
  }
  const notBefore = epoch(data?.nbf, 'data.NBF', problems);
  const expiresOn = epoch(data?.exp, 'data.EXP', problems);
  if (type === 'Microsoft.KeyVault.SecretNearExpiry' || type === 'Microsoft.KeyVault.SecretExpired') {
    if (data && !expiresOn) problems.push('data.EXP: required for expiry events');
  }

  if (problems.length > 0 || !parsedId) {
    throw new ValidationError(
      `invalid Key Vault secret event${id ? ` ${clip(id)}` : ''}: ${problems.join('; ')}`,
      problems,
      {
        metadata: { eventId: id ? clip(id) : null, eventType: type ? clip(type) : null },
      },
    );
  }
  return {
    id: id!,
    type: type as SecretEventType,
    time: time!,
    source,
    schema: isCloudEvent ? 'CloudEventSchemaV1_0' : 'EventGridSchema',
    vaultName: vaultName ?? parsedId.vaultName,
    vaultUrl: parsedId.vaultUrl,
    secretName: secretName!,
    version: version!,
    notBefore,
    expiresOn,
  };
}

/** `https://{vault}.vault.azure.net/secrets/{name}/{version}` -> its parts (any Key Vault cloud suffix). */
export function parseSecretId(
  id: string,
): { vaultUrl: string; vaultName: string; name: string; version?: string } | undefined {
  let url: URL;
  try {
    url = new URL(id);
  } catch {
    return undefined;
  }
  if (url.protocol !== 'https:') return undefined;
  const parts = url.pathname.split('/').filter(Boolean);
  if (parts.length < 2 || parts.length > 3 || parts[0] !== 'secrets') return undefined;
  const host = url.host.toLowerCase();
  return { vaultUrl: `https://${host}`, vaultName: host.split('.')[0]!, name: parts[1]!, version: parts[2] };
}

function normalizeKeys(value: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, inner] of Object.entries(value)) out[key.trim().toLowerCase()] = inner;
  return out;
}

function str(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  const trimmed = value.trim();
  return trimmed.length > 0 ? trimmed.slice(0, MAX_EVENT_FIELD) : undefined;
}

function epoch(value: unknown, path: string, problems: string[]): Date | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  const n = typeof value === 'number' ? value : typeof value === 'string' ? Number(value.trim()) : Number.NaN;
  const date = new Date(n * 1000);
  if (!Number.isFinite(n) || n < 0 || Number.isNaN(date.getTime())) {
    problems.push(`${path}: must be Unix epoch seconds`);
    return undefined;
  }
  return date;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function clip(text: string): string {
  return text.length > 120 ? `${text.slice(0, 117)}...` : text;
}

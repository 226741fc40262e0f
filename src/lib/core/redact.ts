/**
 * Secret hygiene. Secret values never reach logs, audit records, errors, notifications or HTTP
 * responses. Two mechanisms: values the process has seen are registered and replaced wherever they
 * appear in text, and keys that look secret (`value`, `password`, `key`, `connectionString`...)
 * are masked in structured data.
 */
const REDACTED = '[REDACTED]';
const MIN_REGISTERED_LENGTH = 6;
const MAX_REGISTERED = 10_000;

const registered = new Set<string>();

// Not `value` / `key`: too common in plain data (alert dimensions, idempotency keys) to mask by
// name; secret values read through the adapters are registered and replaced wherever they appear.
const SECRET_KEY =
  /^(secret|secretvalue|password|pwd|primarykey|secondarykey|primarymasterkey|secondarymasterkey|primaryreadonlymasterkey|secondaryreadonlymasterkey|accountkey|sharedaccesskey|connectionstring|primaryconnectionstring|secondaryconnectionstring|token|accesstoken|authorization|sig|signature|clientsecret)$/i;

const SECRET_TEXT_RULES: Array<[RegExp, string]> = [
  [/\b(AccountKey|SharedAccessKey|SharedAccessSignature|Password|pwd)=[^;"'\s]+/gi, `$1=${REDACTED}`],
  [/([?&](?:sig|code)=)[^&"'\s]+/gi, `$1${REDACTED}`],
  [/\b(Bearer\s+)[A-Za-z0-9._~+/=-]+/gi, `$1${REDACTED}`],
];

/** Registers a secret value so that it is replaced wherever it appears in redacted text. */
export function registerSecret(value: string | undefined | null): void {
  if (!value || value.length < MIN_REGISTERED_LENGTH) return;
  if (registered.size >= MAX_REGISTERED) {
    const oldest = registered.values().next().value;
    if (oldest !== undefined) registered.delete(oldest);
  }
  registered.add(value);
}

/** Replaces registered secret values and secret-looking fragments in a string. */
export function redactText(text: string): string {
  let out = text;
  for (const secret of registered) {
    if (out.includes(secret)) out = out.split(secret).join(REDACTED);
  }
  for (const [pattern, replacement] of SECRET_TEXT_RULES) out = out.replace(pattern, replacement);
  return out;
}

export function isSecretKey(key: string): boolean {
  return SECRET_KEY.test(key.replace(/[-_\s]/g, ''));
}

/** Deep copy of `data` with secret-looking keys masked and registered secrets replaced. */
export function redact<T>(data: T): T {
  return redactValue(data, new WeakSet()) as T;
}

function redactValue(value: unknown, seen: WeakSet<object>): unknown {
  if (typeof value === 'string') return redactText(value);
  if (value === null || typeof value !== 'object') return value;
  if (seen.has(value)) return '[Circular]';
  seen.add(value);
  if (value instanceof Date) return value;
  if (value instanceof Error) {
    return {
      name: value.name,
      message: redactText(value.message),
      ...(redactValue({ ...value }, seen) as object),
    };
  }
  if (Array.isArray(value)) return value.map((item) => redactValue(item, seen));
  const out: Record<string, unknown> = {};
  for (const [key, inner] of Object.entries(value)) {
    out[key] =
      isSecretKey(key) && inner !== undefined && inner !== null && typeof inner !== 'object'
        ? REDACTED
        : redactValue(inner, seen);
  }
  return out;
}

/** For tests: forget every registered secret. */
export function clearRegisteredSecrets(): void {
  registered.clear();
}

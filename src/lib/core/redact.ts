/**
 * Secret hygiene: redaction masks VALUES, never NAMES.
 *
 * Operators must see which secret, vault, resource and entity a log line, an audit record or a
 * notification is about (`Secret: db-password`, `Vault: kv-prod`, `keyName: key1`), so nothing is
 * masked because its key or title merely contains "secret" or "key". What is masked, and nothing
 * else, is:
 *
 * 1. **Registered values** (`registerSecret`): every secret value the process reads or writes, and
 *    every credential setting (webhook URLs, connection strings). Each occurrence in any string, at
 *    any depth, object keys included, is replaced by `[REDACTED]`, as are its URL-encoded and
 *    JSON-escaped forms. Values shorter than 6 characters are not registered (a short value such as
 *    `true` would blank out unrelated text). A registered value is never forgotten: see "Registry".
 *
 * 2. **Credential fragments in text** (every string, whatever its key):
 *    - connection-string parts `AccountKey=`, `SharedAccessKey=`, `SharedAccessSignature=`,
 *      `AccessKey=`, `Password=`, `pwd=`, `ClientSecret=` and App Configuration's `;Secret=`;
 *    - URL query credentials `sig=` (anywhere: SAS URLs and SAS tokens), and `code=`,
 *      `signature=`, `token=`, `access_token=`, `id_token=`, `refresh_token=`, `client_secret=`,
 *      `api_key=` / `apikey=`, `password=`, `subscription-key=` after `?` or `&`;
 *    - URL user info (`scheme://user:[REDACTED]@host`), `Bearer <token>`, the credential of an
 *      `Authorization:` header quoted in text, and JSON Web Tokens (`eyJ...eyJ...`);
 *    - webhook URL credentials carried in the path: Teams / Office 365 incoming webhooks
 *      (every segment after `/IncomingWebhook/` that is not a GUID), Slack
 *      (`hooks.slack.com/services/T…/B…/[REDACTED]`), Discord (`/api/webhooks/<id>/[REDACTED]`);
 *      Logic Apps and Power Automate triggers carry theirs in `sig=`;
 *    - a JSON member quoted in text whose key is a credential field (rule 3a), e.g. an SDK error
 *      quoting `{"password":"..."}`.
 *    The parameter or header name, the account name, the host and the path are kept.
 *
 * 3. **Fields that carry values in known payloads** (structured data, decided by the field's role):
 *    a. credential fields: keys that in every Azure, HTTP and OAuth payload we know carry a
 *       credential value and never an identifier. Compared after lower-casing and dropping `-`, `_`,
 *       `.` and spaces, against an exact list (`CREDENTIAL_FIELDS` below): `password`, `clientSecret`,
 *       `accessToken`, `authorization`, `primaryKey`, `primaryMasterKey`, `primaryConnectionString`,
 *       `key1` (Event Grid), `sig`... Exact names only: `secretName`, `Secret`, `keyName`,
 *       `Key Vault`, `idempotencyKey`, `token`, `value` are not credential fields;
 *    b. `value` of a Key Vault secret (REST `SecretBundle` / `SecretSetParameters`: with `attributes`,
 *       `contentType`, or an `id` under `/secrets/`; SDK `KeyVaultSecret`: with `properties`), and
 *       of an ARM listKeys key (Storage `keys[]`: with `keyName`). A `{ name, value }` pair (alert
 *       dimension, app setting, metric value) is not such a shape, and is shown;
 *    c. private members (`d`, `p`, `q`, `dp`, `dq`, `qi`, `k`) of a JSON Web Key (an object with
 *       `kty`), never `kid`, `n`, `e`, `x`, `y`;
 *    d. `token` of an `@azure/core-auth` `AccessToken` (with a numeric `expiresOnTimestamp`).
 *    Such a field's string or number is replaced whole; an object under it is walked like any other.
 *
 * Registry: values are kept as fingerprints (length, two 32-bit hashes of the whole value, and
 * one 6-character anchor chosen to be the rarest among those already indexed), never as the strings
 * themselves, in typed arrays: about 100 bytes per fingerprint whatever the value's length (a value
 * takes one to three: itself, its URL-encoded and its JSON-escaped forms when they differ), so
 * 100,000 values take about 20 MiB. Nothing is evicted and there is no budget to run out of: a value
 * is masked until the process ends. `redactText` finds every occurrence of every value in one pass
 * with a rolling hash of the anchor window behind a bit filter; an anchor hit is confirmed by
 * hashing the candidate span. Its cost is O(text length + anchor hits × value length) whatever the
 * number of values, never O(values × text length) (`npm run bench -- redact`). A hash collision can
 * only mask a same-length span that is not the value: it fails safe by masking more, never less.
 */

const REDACTED = '[REDACTED]';
const MIN_REGISTERED_LENGTH = 6;
/** Anchor window; no longer than the shortest registered value, so every value has one. */
const ANCHOR = MIN_REGISTERED_LENGTH;
const ANCHOR_BASE = 0x01000193;
const ANCHOR_TOP = powMod32(ANCHOR_BASE, ANCHOR - 1);
/** A 2^22-bit filter in front of the anchor map: most windows are rejected without a map lookup. */
const FILTER_BITS = 22;
const FILTER_MASK = (1 << FILTER_BITS) - 1;

/**
 * An open-addressing table from an int32 key to a chain of fingerprints (linked through `next`),
 * with the chain's length. Typed arrays only: no object per value, nothing for the GC to walk.
 */
class ChainTable {
  keys = new Int32Array(1024);
  /** Fingerprint index + 1 of the chain's first entry; 0 marks an empty slot. */
  heads = new Int32Array(1024);
  counts = new Int32Array(1024);
  private used = 0;
  private shift = 32 - 10;

  /** The slot holding `key`, or -1. */
  find(key: number): number {
    const mask = this.heads.length - 1;
    let i = Math.imul(key, 0x9e3779b1) >>> this.shift;
    for (;;) {
      if (this.heads[i] === 0) return -1;
      if (this.keys[i] === key) return i;
      i = (i + 1) & mask;
    }
  }

  /** Puts fingerprint `index` at the front of `key`'s chain. */
  add(key: number, index: number, next: Int32Array): void {
    if ((this.used + 1) * 2 > this.heads.length) this.grow();
    const mask = this.heads.length - 1;
    let i = Math.imul(key, 0x9e3779b1) >>> this.shift;
    while (this.heads[i] !== 0 && this.keys[i] !== key) i = (i + 1) & mask;
    if (this.heads[i] === 0) {
      this.used++;
      this.keys[i] = key;
    }
    next[index] = this.heads[i] as number;
    this.heads[i] = index + 1;
    this.counts[i] = (this.counts[i] as number) + 1;
  }

  clear(): void {
    this.keys = new Int32Array(1024);
    this.heads = new Int32Array(1024);
    this.counts = new Int32Array(1024);
    this.used = 0;
    this.shift = 32 - 10;
  }

  private grow(): void {
    const { keys, heads, counts } = this;
    const capacity = heads.length * 2;
    this.keys = new Int32Array(capacity);
    this.heads = new Int32Array(capacity);
    this.counts = new Int32Array(capacity);
    this.shift--;
    const mask = capacity - 1;
    for (let j = 0; j < heads.length; j++) {
      if (heads[j] === 0) continue;
      let i = Math.imul(keys[j] as number, 0x9e3779b1) >>> this.shift;
      while (this.heads[i] !== 0) i = (i + 1) & mask;
      this.keys[i] = keys[j] as number;
      this.heads[i] = heads[j] as number;
      this.counts[i] = counts[j] as number;
    }
  }
}

/**
 * The registered values, as fingerprints in parallel typed arrays (index = fingerprint number):
 * about 60 bytes per fingerprint with the tables, whatever the value's length.
 */
const registry = {
  size: 0,
  length: new Int32Array(1024),
  h1: new Int32Array(1024),
  h2: new Int32Array(1024),
  /** Where the anchor window starts inside the value. */
  offset: new Int32Array(1024),
  nextByAnchor: new Int32Array(1024),
  nextById: new Int32Array(1024),
  byAnchor: new ChainTable(),
  byId: new ChainTable(),
  /** One bit per anchor-hash bucket: most text windows are rejected without a table probe. */
  filter: new Uint32Array(1 << (FILTER_BITS - 5)),
};

/**
 * Registers a secret value so that it is replaced wherever it appears in redacted text, for the
 * rest of the process's life (nothing is ever evicted). Values shorter than 6 characters are ignored.
 * Call it for every secret value read or written and every credential setting.
 */
export function registerSecret(value: string | undefined | null): void {
  if (typeof value !== 'string' || value.length < MIN_REGISTERED_LENGTH) return;
  addFingerprint(value);
  // The same value quoted in a URL or a JSON document is written differently.
  let encoded: string | undefined;
  try {
    encoded = encodeURIComponent(value);
  } catch {
    // A lone surrogate cannot be URI-encoded; no URL can carry it either.
  }
  if (encoded !== undefined && encoded !== value) addFingerprint(encoded);
  const escaped = JSON.stringify(value).slice(1, -1);
  if (escaped !== value) addFingerprint(escaped);
}

function addFingerprint(value: string): void {
  const r = registry;
  const h1 = hashA(value, 0, value.length);
  const h2 = hashB(value, 0, value.length);
  const idSlot = r.byId.find(h1);
  if (idSlot >= 0) {
    for (let f = r.byId.heads[idSlot] as number; f !== 0; f = r.nextById[f - 1] as number) {
      if (r.length[f - 1] === value.length && r.h2[f - 1] === h2) return;
    }
  }
  // The rarest anchor keeps chains short even when many values share a prefix (connection strings).
  let bestOffset = 0;
  let bestHash = 0;
  let bestCount = Number.POSITIVE_INFINITY;
  let window = anchorHash(value, 0);
  for (let offset = 0; offset + ANCHOR <= value.length; offset++) {
    if (offset > 0)
      window = rollAnchor(window, value.charCodeAt(offset - 1), value.charCodeAt(offset + ANCHOR - 1));
    const slot = r.byAnchor.find(window);
    const count = slot < 0 ? 0 : (r.byAnchor.counts[slot] as number);
    if (count < bestCount) {
      bestCount = count;
      bestOffset = offset;
      bestHash = window;
      if (count === 0) break;
    }
  }
  if (r.size === r.length.length) growRegistry();
  const index = r.size++;
  r.length[index] = value.length;
  r.h1[index] = h1;
  r.h2[index] = h2;
  r.offset[index] = bestOffset;
  r.byId.add(h1, index, r.nextById);
  r.byAnchor.add(bestHash, index, r.nextByAnchor);
  const bit = filterBit(bestHash);
  r.filter[bit >>> 5] = (r.filter[bit >>> 5] as number) | (1 << (bit & 31));
}

function growRegistry(): void {
  const r = registry;
  const widen = (from: Int32Array) => {
    const to = new Int32Array(from.length * 2);
    to.set(from);
    return to;
  };
  r.length = widen(r.length);
  r.h1 = widen(r.h1);
  r.h2 = widen(r.h2);
  r.offset = widen(r.offset);
  r.nextByAnchor = widen(r.nextByAnchor);
  r.nextById = widen(r.nextById);
}

/** How many distinct fingerprints the registry holds (a value and its encoded forms count apart). */
export function registeredSecretCount(): number {
  return registry.size;
}

/** Replaces registered secret values and credential fragments in a string. */
export function redactText(text: string): string {
  if (typeof text !== 'string' || text === '') return text;
  let out = maskRegistered(text);
  const lower = out.toLowerCase();
  for (const [gate, pattern, replacement] of TEXT_RULES) {
    if (!lower.includes(gate)) continue;
    out =
      typeof replacement === 'string' ? out.replace(pattern, replacement) : out.replace(pattern, replacement);
  }
  return out;
}

function maskRegistered(text: string): string {
  const r = registry;
  if (r.size === 0 || text.length < ANCHOR) return text;
  const { filter, byAnchor } = r;
  let starts: number[] | undefined;
  let ends: number[] | undefined;
  let window = anchorHash(text, 0);
  for (let i = 0; i + ANCHOR <= text.length; i++) {
    if (i > 0) window = rollAnchor(window, text.charCodeAt(i - 1), text.charCodeAt(i + ANCHOR - 1));
    const bit = filterBit(window);
    if (((filter[bit >>> 5] as number) & (1 << (bit & 31))) === 0) continue;
    const slot = byAnchor.find(window);
    if (slot < 0) continue;
    for (let f = byAnchor.heads[slot] as number; f !== 0; f = r.nextByAnchor[f - 1] as number) {
      const start = i - (r.offset[f - 1] as number);
      const end = start + (r.length[f - 1] as number);
      if (start < 0 || end > text.length) continue;
      if (hashA(text, start, end) !== r.h1[f - 1] || hashB(text, start, end) !== r.h2[f - 1]) continue;
      starts ??= [];
      ends ??= [];
      starts.push(start);
      ends.push(end);
    }
  }
  if (!starts || !ends) return text;
  // Overlapping or adjacent matches are masked as one span: no fragment of either value survives.
  const order = starts.map((_, k) => k).sort((a, b) => (starts[a] as number) - (starts[b] as number));
  let out = '';
  let cursor = 0;
  let spanStart = -1;
  let spanEnd = -1;
  for (const k of order) {
    const s = starts[k] as number;
    const e = ends[k] as number;
    if (spanStart >= 0 && s <= spanEnd) {
      if (e > spanEnd) spanEnd = e;
      continue;
    }
    if (spanStart >= 0) {
      out += text.slice(cursor, spanStart) + REDACTED;
      cursor = spanEnd;
    }
    spanStart = s;
    spanEnd = e;
  }
  out += text.slice(cursor, spanStart) + REDACTED + text.slice(spanEnd);
  return out;
}

/**
 * Keys whose value is a credential in every payload we know (Azure REST and SDK shapes, HTTP
 * headers, OAuth, connection-string parts), compared after `normalizeKey`. Exact names only:
 * a key that merely contains "secret", "key" or "token" names something and is shown.
 */
const CREDENTIAL_FIELDS = new Set([
  // passwords and client credentials
  'password',
  'pwd',
  'passwd',
  'passphrase',
  'clientsecret',
  'secretvalue',
  // OAuth / Entra tokens
  'accesstoken',
  'refreshtoken',
  'idtoken',
  'sastoken',
  // HTTP headers carrying credentials
  'authorization',
  'proxyauthorization',
  'cookie',
  'setcookie',
  'xfunctionskey',
  'aegsaskey',
  'aegsastoken',
  'ocpapimsubscriptionkey',
  'apikey',
  // ARM listKeys answers: Cosmos DB, Service Bus / Event Hubs, Redis, Event Grid, Functions
  'primarykey',
  'secondarykey',
  'primarymasterkey',
  'secondarymasterkey',
  'primaryreadonlymasterkey',
  'secondaryreadonlymasterkey',
  'primaryconnectionstring',
  'secondaryconnectionstring',
  'aliasprimaryconnectionstring',
  'aliassecondaryconnectionstring',
  'connectionstring',
  'key1',
  'key2',
  'masterkey',
  // connection-string and SAS parts
  'accountkey',
  'sharedaccesskey',
  'sharedaccesssignature',
  'sig',
]);

function normalizeKey(key: string): string {
  return key.toLowerCase().replace(/[-_.\s]/g, '');
}

/**
 * Whether a field of this name carries a credential value in every known payload (rule 3a above).
 * `secretName`, `Secret`, `keyName`, `Key Vault`, `idempotencyKey` are names, not credentials.
 */
export function isCredentialField(key: string): boolean {
  return CREDENTIAL_FIELDS.has(normalizeKey(key));
}

/** @deprecated Use `isCredentialField`: the same exact-name rule (a key that only looks secret is shown). */
export const isSecretKey = isCredentialField;

const JWK_PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k'];

/** Members of `value` that carry a credential because of the shape they are in (rules 3b-3d). */
function valueMembersOf(value: Record<string, unknown>): string[] {
  const members: string[] = [];
  if (typeof value.value === 'string') {
    const keyVaultSecret =
      isPlainObject(value.attributes) ||
      isPlainObject(value.properties) ||
      'contentType' in value ||
      (typeof value.id === 'string' && /\/secrets\//i.test(value.id));
    const listedKey = typeof value.keyName === 'string';
    if (keyVaultSecret || listedKey) members.push('value');
  }
  if (typeof value.kty === 'string') members.push(...JWK_PRIVATE_MEMBERS);
  if (typeof value.token === 'string' && typeof value.expiresOnTimestamp === 'number') members.push('token');
  return members;
}

/**
 * Deep copy of `data` with values masked (registered values, credential fragments, credential
 * fields; see the top of this file) and every name kept. Dates stay dates; an `Error` becomes
 * `{ name, message, ...its own fields }`; cycles become `[Circular]`.
 */
export function redact<T>(data: T): T {
  return redactValue(data, new Set()) as T;
}

function redactValue(value: unknown, ancestors: Set<object>): unknown {
  if (typeof value === 'string') return redactText(value);
  if (value === null || typeof value !== 'object') return value;
  if (value instanceof Date) return value;
  if (ancestors.has(value)) return '[Circular]';
  if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) return `[binary ${value.byteLength} bytes]`;
  ancestors.add(value);
  try {
    if (value instanceof Error) {
      return {
        name: value.name,
        message: redactText(value.message),
        ...(redactValue({ ...value }, ancestors) as object),
      };
    }
    if (Array.isArray(value)) return value.map((item) => redactValue(item, ancestors));
    const toJSON = (value as { toJSON?: unknown }).toJSON;
    if (typeof toJSON === 'function') return redactValue(toJSON.call(value), ancestors);
    const record = value as Record<string, unknown>;
    const byShape = valueMembersOf(record);
    const out: Record<string, unknown> = {};
    for (const [key, inner] of Object.entries(record)) {
      const masked = byShape.includes(key) || isCredentialField(key);
      out[redactText(key)] = masked ? maskWhole(inner, ancestors) : redactValue(inner, ancestors);
    }
    return out;
  } finally {
    ancestors.delete(value);
  }
}

/** A credential field's value: strings and numbers replaced whole, lists element by element. */
function maskWhole(value: unknown, ancestors: Set<object>): unknown {
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'bigint') return REDACTED;
  if (Array.isArray(value)) return value.map((item) => maskWhole(item, ancestors));
  return redactValue(value, ancestors);
}

function isPlainObject(value: unknown): boolean {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** For tests: forget every registered secret. */
export function clearRegisteredSecrets(): void {
  registry.size = 0;
  registry.byAnchor.clear();
  registry.byId.clear();
  registry.filter.fill(0);
}

// ---------------------------------------------------------------------------------------------
// Credential fragments in text (rule 2). Every rule is idempotent: `[REDACTED]` stays as it is.

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

type Replacer = (match: string, ...groups: string[]) => string;

/**
 * `[gate, pattern, replacement]`: a rule runs only when its gate (lower case) is in the lower-cased
 * text, which spares short log lines most of the passes.
 */
const TEXT_RULES: Array<[string, RegExp, string | Replacer]> = [
  // Connection-string parts (Storage, Service Bus, Event Hubs, Cosmos DB, SQL, SignalR...).
  // A value runs to the next `;` when only words without `=` come before it (a password may hold
  // spaces), else to the next space or quote.
  [
    '=',
    /\b(AccountKey|SharedAccessKey|SharedAccessSignature|AccessKey|Password|pwd|ClientSecret)=(?:[^;"'\s]+(?:[ \t]+[^;"'\s=]+)*(?=;)|[^;"'\s]+)/gi,
    `$1=${REDACTED}`,
  ],
  // App Configuration connection strings: `Endpoint=...;Id=...;Secret=...` (only after `;`).
  ['=', /(;\s*Secret)=[^;"'\s]+/gi, `$1=${REDACTED}`],
  // SAS signatures anywhere: SAS URLs, `SharedAccessSignature sr=...&sig=...` tokens, Logic Apps.
  ['=', /\b(sig)=[^&;"'\s<>]+/gi, `$1=${REDACTED}`],
  // Other query-string credentials, only as query parameters.
  [
    '=',
    /([?&](?:code|signature|token|access_token|id_token|refresh_token|client_secret|api_key|apikey|password|subscription-key))=[^&#"'\s<>]+/gi,
    `$1=${REDACTED}`,
  ],
  // User info of a URL: keep the user, mask the password.
  ['://', /:\/\/([^\s:@/?#"'<>]+):[^\s@/?#"'<>]+@/g, `://$1:${REDACTED}@`],
  // An Authorization header quoted in text: keep the scheme, mask the credential.
  [
    'authorization',
    /\b((?:proxy-)?authorization["']?\s*[:=]\s*["']?)(?:(Bearer|Basic|Digest|SharedKey|SharedKeyLite|SharedAccessSignature)\s+)?[^\s"',;]+/gi,
    (_m, head: string, scheme?: string) => `${head}${scheme ? `${scheme} ` : ''}${REDACTED}`,
  ],
  // Bearer tokens anywhere (8+ characters, so that prose such as "Bearer token" is left alone).
  ['bearer', /\b(Bearer\s+)[A-Za-z0-9._~+/-]{8,}=*/gi, `$1${REDACTED}`],
  // JSON Web Tokens: base64url header and payload both start with `{"` (`eyJ`).
  ['eyj', /\beyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/g, REDACTED],
  // Teams / Office 365 incoming webhooks: `.../IncomingWebhook/<credential>/<owner guid>[/V2<signature>]`.
  [
    'incomingwebhook',
    /(\/IncomingWebhook\/)([^\s?#"'<>]+)/gi,
    (_m, head: string, path: string) =>
      head +
      path
        .split('/')
        .map((segment, i) => (i > 0 && (GUID.test(segment) || segment === '') ? segment : REDACTED))
        .join('/'),
  ],
  // Slack incoming webhooks and workflow triggers: the team / bot ids are kept, the rest is the credential.
  [
    'hooks.slack.com',
    /(hooks\.slack\.com\/(?:services|workflows|triggers)\/)([^\s?#"'<>]+)/gi,
    (_m, head: string, path: string) =>
      head +
      path
        .split('/')
        .map((segment, i) => (i < 2 || segment === '' ? segment : REDACTED))
        .join('/'),
  ],
  // Discord webhooks: `/api/webhooks/<id>/<token>`.
  ['discord', /(discord(?:app)?\.com\/api\/webhooks\/[0-9]+\/)[^\s/?#"'<>]+/gi, `$1${REDACTED}`],
  // A JSON member quoted in text whose key is a credential field (rule 3a).
  [
    '"',
    /("([^"\\\n]{1,64})"\s*:\s*")(?:[^"\\\n]|\\.){0,16384}"/g,
    (match: string, head: string, key: string) => (isCredentialField(key) ? `${head}${REDACTED}"` : match),
  ],
];

// ---------------------------------------------------------------------------------------------
// Hashing. Two independent 32-bit hashes of the whole value (with its length: ~2^-64 collisions),
// and a polynomial rolling hash of the anchor window.

function hashA(text: string, start: number, end: number): number {
  let h = 0x811c9dc5;
  for (let i = start; i < end; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h | 0;
}

function hashB(text: string, start: number, end: number): number {
  let h = 0x9747b28c;
  for (let i = start; i < end; i++) {
    h = Math.imul(h ^ text.charCodeAt(i), 0x5bd1e995);
    h ^= h >>> 13;
  }
  h = Math.imul(h ^ (h >>> 15), 0x27d4eb2f);
  return (h ^ (h >>> 16)) | 0;
}

function anchorHash(text: string, start: number): number {
  let h = 0;
  for (let i = start; i < start + ANCHOR && i < text.length; i++)
    h = (Math.imul(h, ANCHOR_BASE) + text.charCodeAt(i)) | 0;
  return h;
}

function rollAnchor(h: number, leaving: number, entering: number): number {
  return (Math.imul((h - Math.imul(leaving, ANCHOR_TOP)) | 0, ANCHOR_BASE) + entering) | 0;
}

function filterBit(h: number): number {
  return (h ^ (h >>> FILTER_BITS)) & FILTER_MASK;
}

function powMod32(base: number, exponent: number): number {
  let out = 1;
  for (let i = 0; i < exponent; i++) out = Math.imul(out, base);
  return out;
}

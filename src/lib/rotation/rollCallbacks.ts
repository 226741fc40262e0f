/**
 * Completion by callback of a consumer rolled through a webhook (a pipeline that calls the app back
 * when it is done). Before the webhook is called, the roll gets a callback URL on the app carrying a
 * per-roll token: 32 random bytes, unguessable, stored only as its SHA-256, compared in constant
 * time, good for one report. The callback endpoint records `{ status: Succeeded | Failed, reason? }`;
 * the webhook roller reads it (`WebhookCallbacks`) when the rotation verifies the roll.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { WebhookCallbacks } from '../azure/webhookRoller';
import { AlreadyDoneError, ForbiddenError, ValidationError } from '../core/errors';
import { stableHash } from '../core/ids';
import type { Logger } from '../core/logging';
import { redactText, registerSecret } from '../core/redact';
import type { Clock } from '../ports/clock';
import type { RollHandle, RollStatus } from '../ports/consumers';
import type { RollCallbackStatus, RollCallbackStore } from '../ports/rollCallbacks';

/** The callback endpoint's path (anonymous to the platform: the token authenticates the caller). */
export const ROLL_CALLBACK_PATH = '/api/rollcallbacks';
const CALLBACK_ID = /^[0-9a-f]{32}$/;
/** base64url of 32 bytes. */
const TOKEN = /^[A-Za-z0-9_-]{43}$/;
const MAX_REASON_CHARS = 500;
/** Fields a callback body may have: the report, and what the sandbox's and most pipelines' echo. */
const BODY_FIELDS = ['status', 'reason', 'id', 'consumer'];

/** The roll a callback is about, as the rotation names it: its run and its consumer. */
export function rollCallbackId(runId: string, consumer: string): string {
  return stableHash('roll-callback', runId, consumer);
}

const sha256 = (token: string) => createHash('sha256').update(token, 'utf8').digest();

/**
 * Registers a roll's callback (pending) and returns the URL the webhook must call back:
 * `{baseUrl}/api/rollcallbacks?id={callbackId}&token={token}`. The token is registered with the
 * redactor; only its hash is stored. A roll registered again gets a new token (the old one stops
 * working). One Table write.
 */
export async function registerRollCallback(
  request: { runId: string; consumer: string; baseUrl: string; ttlMs: number },
  deps: { store: RollCallbackStore; clock: Clock },
  abortSignal?: AbortSignal,
): Promise<{ id: string; url: string }> {
  const id = rollCallbackId(request.runId, request.consumer);
  const token = randomBytes(32).toString('base64url');
  registerSecret(token);
  const now = deps.clock.now();
  await deps.store.register(
    {
      callbackId: id,
      tokenHash: sha256(token).toString('hex'),
      registeredOn: now,
      expiresOn: new Date(now.getTime() + request.ttlMs),
    },
    { abortSignal },
  );
  const base = request.baseUrl.replace(/\/+$/, '');
  return { id, url: `${base}${ROLL_CALLBACK_PATH}?id=${id}&token=${token}` };
}

/** What recording a callback needs. */
export interface RollCallbackDeps {
  store: RollCallbackStore;
  clock: Clock;
  logger?: Logger;
}

/** A callback as received: its query and its JSON body, checked before anything is read. */
export interface RollCallbackRequest {
  id: unknown;
  token: unknown;
  body: unknown;
}

/** Checks a callback's query and body; throws `ValidationError` listing every problem. */
export function parseRollCallback(request: RollCallbackRequest): {
  id: string;
  token: string;
  status: RollCallbackStatus;
  reason?: string;
} {
  const problems: string[] = [];
  if (typeof request.id !== 'string' || !CALLBACK_ID.test(request.id))
    problems.push('id: the callback id of the URL the roll was given (32 hex digits)');
  if (typeof request.token !== 'string' || !TOKEN.test(request.token))
    problems.push('token: the token of the URL the roll was given');
  const body = request.body;
  let status: RollCallbackStatus | undefined;
  let reason: string | undefined;
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    problems.push('(body): a JSON object { "status": "Succeeded" | "Failed", "reason"?: text }');
  } else {
    const fields = body as Record<string, unknown>;
    const unknown = Object.keys(fields).filter((k) => !BODY_FIELDS.includes(k));
    if (unknown.length > 0)
      problems.push(`${unknown.join(', ')}: not allowed (allowed: ${BODY_FIELDS.join(', ')})`);
    if (fields.status === 'Succeeded' || fields.status === 'Failed') status = fields.status;
    else problems.push("status: 'Succeeded' or 'Failed'");
    if (fields.reason !== undefined) {
      if (typeof fields.reason !== 'string' || fields.reason.length > MAX_REASON_CHARS)
        problems.push(`reason: text of at most ${MAX_REASON_CHARS} characters`);
      else reason = redactText(fields.reason);
    }
    for (const name of ['id', 'consumer'] as const) {
      if (
        fields[name] !== undefined &&
        (typeof fields[name] !== 'string' || (fields[name] as string).length > 200)
      )
        problems.push(`${name}: text of at most 200 characters`);
    }
  }
  if (problems.length > 0) throw new ValidationError('invalid roll callback', problems);
  return {
    id: request.id as string,
    token: request.token as string,
    status: status!,
    ...(reason ? { reason } : {}),
  };
}

/**
 * Records what a callback reports, once. An unknown roll and a wrong token get the same answer
 * (403: the URL is not one the app gave out), compared in constant time on the token's hash; a
 * second report for a roll is refused (409: the token was used). ETag-safe: of two racing
 * callbacks, one records. Two Table calls (a read, a conditional write).
 */
export async function recordRollCallback(
  callback: ReturnType<typeof parseRollCallback>,
  deps: RollCallbackDeps,
  abortSignal?: AbortSignal,
): Promise<{ callbackId: string; status: RollCallbackStatus }> {
  const refused = new ForbiddenError(
    'the callback URL is not one the app gave to a roll awaiting its callback',
  );
  const presented = sha256(callback.token);
  for (let round = 1; round <= 3; round++) {
    const record = await deps.store.get(callback.id, { abortSignal });
    const stored = Buffer.from(record?.tokenHash ?? '', 'hex');
    // Compared even when there is no record (against itself), so that both take the same time.
    const matches =
      stored.length === presented.length
        ? timingSafeEqual(stored, presented)
        : !timingSafeEqual(presented, presented);
    if (!record || !matches || record.expiresOn.getTime() <= deps.clock.now().getTime()) {
      deps.logger?.warn('roll callback refused: unknown roll or wrong token', { callbackId: callback.id });
      throw refused;
    }
    if (record.status !== 'pending') {
      throw new AlreadyDoneError(
        `this roll's callback was already received (${record.status}): a token is good once`,
      );
    }
    const written = await deps.store.report(
      record,
      {
        status: callback.status,
        ...(callback.reason ? { reason: callback.reason } : {}),
        reportedOn: deps.clock.now(),
      },
      { abortSignal },
    );
    if (written) {
      deps.logger?.info('roll callback recorded', { callbackId: callback.id, status: callback.status });
      return { callbackId: callback.id, status: callback.status };
    }
  }
  throw new AlreadyDoneError("this roll's callback changed while it was recorded: it was received already");
}

/**
 * The webhook roller's view of the store: a roll's reported status, by the callback id the
 * rotation put in its handle (`ref.callback`). `undefined` while nothing arrived.
 */
export function webhookCallbacks(store: () => RollCallbackStore): WebhookCallbacks {
  return {
    async statusOf(handle: RollHandle): Promise<RollStatus | undefined> {
      const id = handle.ref.callback;
      if (!id || !CALLBACK_ID.test(id)) {
        throw new ValidationError(`roll handle of consumer ${handle.consumer} names no callback`, [
          'handle.ref.callback',
        ]);
      }
      const record = await store().get(id);
      if (!record || record.status === 'pending') return undefined;
      return record.status === 'Succeeded'
        ? { state: 'done', detail: 'the webhook called back: Succeeded' }
        : {
            state: 'failed',
            reason: `the webhook called back: Failed${record.reason ? `: ${record.reason}` : ''}`,
          };
    },
  };
}

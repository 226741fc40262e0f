import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import { authorize, ROLES } from '../lib/app/auth';
import { getDeps } from '../lib/app/deps';
import { isStampkeeperError, TransientError, ValidationError } from '../lib/core/errors';
import { errorResponse, jsonResponse } from '../lib/core/http';
import { describeError } from '../lib/core/logging';
import { parseCommonAlert } from '../lib/remediation/alert';
import { handleAlert, recordRejectedAlert } from '../lib/remediation/handleAlert';
import { invocationLogger } from './invocation';

/** Common-schema alerts are capped at 256 KB by Azure Monitor; anything much larger is not one. */
const MAX_BODY_BYTES = 512 * 1024;

/**
 * `POST /api/alerts`: the action group webhook (common alert schema). 202 when handled, with the
 * playbook that took it and the run it started or joined (`runId`; the run does the work, so the
 * answer comes well within the action group's 10 s), 200 `duplicate` (with the first handling's
 * run) for a redelivery, 400 with every problem (and an audited rejection) for a body that is
 * not a common-schema alert, 503 + Retry-After when a retry may succeed: action groups retry on
 * 408 / 429 / 503 / 504 only, so every retryable failure answers 503. The action group calls as a
 * secure webhook: built-in authentication validates its Entra token, and only a caller holding the
 * app role `ActionGroupsSecureWebhook` (Azure Monitor's service principal) gets past 401 / 403,
 * before the body is read; the function key stays in its URI.
 */
export async function alerts(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  const logger = invocationLogger(context, 'alerts');
  const correlationId = context.invocationId;
  try {
    const deps = getDeps();
    const caller = authorize(request, { authEnabled: deps.settings.authEnabled }, ROLES.alertDelivery);
    const ctx = { actor: caller.actor, correlationId, attemptId: context.invocationId };
    await deps.ready();
    const alertDeps = deps.alerts(logger);
    let body: unknown;
    let alert: ReturnType<typeof parseCommonAlert>;
    try {
      body = await readJson(request);
      alert = parseCommonAlert(body);
    } catch (error) {
      if (error instanceof ValidationError) await recordRejectedAlert(body, error, alertDeps, ctx);
      throw error;
    }
    const result = await handleAlert(alert, alertDeps, ctx);
    if (result.status === 'duplicate') {
      return jsonResponse(
        200,
        {
          status: 'duplicate',
          auditId: result.previous.auditId ?? null,
          playbook: result.previous.playbook ?? null,
          runId: result.previous.runId ?? null,
          correlationId,
        },
        correlationId,
      );
    }
    return jsonResponse(
      202,
      {
        status: 'accepted',
        outcome: result.outcome,
        auditId: result.auditId,
        playbook: result.playbook,
        runId: result.runId,
        correlationId,
      },
      correlationId,
    );
  } catch (error) {
    if (!isStampkeeperError(error)) {
      logger.error('unexpected error handling an alert', { error: describeError(error) });
    }
    return errorResponse(asWebhookError(error), correlationId, logger);
  }
}

async function readJson(request: HttpRequest): Promise<unknown> {
  const declared = Number(request.headers.get('content-length') ?? '0');
  const tooLarge = new ValidationError('the request body is too large for an alert', [
    `(body): larger than ${MAX_BODY_BYTES} bytes`,
  ]);
  if (declared > MAX_BODY_BYTES) throw tooLarge;
  const text = await request.text();
  if (Buffer.byteLength(text) > MAX_BODY_BYTES) throw tooLarge;
  if (text.trim() === '')
    throw new ValidationError('the request body is empty', ['(body): expected a JSON alert']);
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new ValidationError('the request body is not valid JSON', ['(body): not valid JSON']);
  }
}

/** Action groups retry only 408 / 429 / 503 / 504: a retryable failure must answer 503 to be retried. */
function asWebhookError(error: unknown): unknown {
  if (isStampkeeperError(error) && error.retryable && error.status !== 503) {
    return new TransientError(error.message, { cause: error, metadata: error.metadata });
  }
  return error;
}

app.http('alerts', { methods: ['POST'], authLevel: 'function', route: 'alerts', handler: alerts });

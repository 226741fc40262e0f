import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import { getDeps } from '../lib/app/deps';
import { jsonResponse } from '../lib/core/http';
import { redactText } from '../lib/core/redact';
import { invocationLogger } from './invocation';

interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

/**
 * `GET /api/health`: storage reachable (its tables and queues created on first use) and the policy
 * loaded and valid. 200 when every check
 * passes, 503 otherwise (so that a pipeline gate or a load balancer probe can use it). Anonymous:
 * it reveals no configuration values.
 */
export async function health(_request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  const deps = getDeps();
  const logger = invocationLogger(context, 'health');
  const checks: Check[] = [];
  try {
    await deps.ready();
    await deps.state.ping();
    checks.push({ name: 'storage', ok: true, detail: 'table storage reachable' });
  } catch (error) {
    const detail = redactText(error instanceof Error ? error.message : String(error));
    logger.warn('health check failed', { check: 'storage', error: detail });
    checks.push({ name: 'storage', ok: false, detail: 'table storage unreachable' });
  }
  const { policy } = deps;
  checks.push({
    name: 'policy',
    ok: true,
    detail: `policy v${policy.version} valid: ${policy.secrets.length} managed secret(s), ${policy.notifications.channels.length} channel(s)`,
  });
  const healthy = checks.every((c) => c.ok);
  return jsonResponse(
    healthy ? 200 : 503,
    {
      status: healthy ? 'healthy' : 'unhealthy',
      environment: deps.settings.environment,
      platform: deps.platform.kind,
      checks,
    },
    context.invocationId,
  );
}

app.http('health', { methods: ['GET'], authLevel: 'anonymous', route: 'health', handler: health });

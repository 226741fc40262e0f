import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import { getDeps } from '../lib/app/deps';
import { checkHealth } from '../lib/app/health';
import { jsonResponse } from '../lib/core/http';
import { invocationLogger } from './invocation';

/**
 * `GET /api/health`: storage reachable, the policy valid, every managed vault resolvable and
 * readable. 200 when every check passes, 503 otherwise (so that a pipeline gate or a load balancer
 * probe can use it); each failing check says whether it is a configuration problem. Anonymous: it
 * shows names, never configuration values.
 */
export async function health(_request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  const logger = invocationLogger(context, 'health');
  const deps = getDeps();
  await deps.load();
  const report = await checkHealth(deps.health(logger));
  return jsonResponse(report.status === 'healthy' ? 200 : 503, report, context.invocationId);
}

app.http('health', { methods: ['GET'], authLevel: 'anonymous', route: 'health', handler: health });

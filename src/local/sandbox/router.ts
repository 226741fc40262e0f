/**
 * The sandbox's `HttpClient`: every request an SDK client sends goes through here and is routed by
 * host name to one emulated service. Loopback goes to the real network (Azurite, the local host);
 * any other host lands in the webhook sink (Teams and generic webhooks). A service that throws
 * answers a 500 Azure error instead of crashing the caller's pipeline.
 */
import type { HttpClient, PipelineRequest, PipelineResponse } from '@azure/core-rest-pipeline';
import { createDefaultHttpClient } from '@azure/core-rest-pipeline';
import {
  azureError,
  type SandboxReply,
  type SandboxRequest,
  toPipelineResponse,
  toSandboxRequest,
} from './http';

/** One emulated Azure service. Add a service by implementing this and registering it in `createSandbox`. */
export interface ServiceEmulator {
  readonly name: string;
  /** True when this service owns `hostname` (lower case, no port). */
  matches(hostname: string): boolean;
  handle(request: SandboxRequest): Promise<SandboxReply>;
}

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]', '::1']);

export function isLoopback(hostname: string): boolean {
  return LOOPBACK.has(hostname) || hostname.endsWith('.localhost');
}

export function createRoutingHttpClient(services: ServiceEmulator[], fallback: ServiceEmulator): HttpClient {
  let real: HttpClient | undefined;
  return {
    async sendRequest(request: PipelineRequest): Promise<PipelineResponse> {
      const hostname = new URL(request.url).hostname.toLowerCase();
      if (isLoopback(hostname)) {
        real ??= createDefaultHttpClient();
        return real.sendRequest(request);
      }
      if (request.abortSignal?.aborted) {
        const abort = new Error('The operation was aborted.');
        abort.name = 'AbortError';
        throw abort;
      }
      const service = services.find((s) => s.matches(hostname)) ?? fallback;
      let reply: SandboxReply;
      try {
        reply = await service.handle(await toSandboxRequest(request));
      } catch (err) {
        reply = azureError(
          500,
          'InternalServerError',
          `sandbox ${service.name} failed: ${err instanceof Error ? err.message : String(err)}`,
        );
      }
      return toPipelineResponse(request, reply);
    },
  };
}

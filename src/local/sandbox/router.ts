/**
 * The sandbox's `HttpClient`: every request an SDK client sends goes through here and is routed by
 * host name to one emulated service. Loopback goes to the real network (Azurite, the local host);
 * an Azure host no service emulates answers 501 (so a call the sandbox does not cover fails loudly
 * instead of "succeeding" in the sink); any other host lands in the webhook sink (Teams and generic
 * webhooks). A service that throws answers a 500 Azure error instead of crashing the caller's pipeline.
 * A host inside an emulated service's domain that the scenario does not hold (a vault that does not
 * exist) fails as an unknown host does in Azure: the transport throws `ENOTFOUND`, nothing answers.
 */
import type { HttpClient, PipelineRequest, PipelineResponse } from '@azure/core-rest-pipeline';
import { createDefaultHttpClient, RestError } from '@azure/core-rest-pipeline';
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
  /** True when this service owns `hostname`'s domain (lower case, no port). */
  matches(hostname: string): boolean;
  /**
   * False when `hostname`, in this service's domain, has no DNS name in the scenario (a vault that
   * does not exist): the request then fails as `unknownHost` says. Omitted: every matched host resolves.
   */
  resolves?(hostname: string): boolean;
  handle(request: SandboxRequest): Promise<SandboxReply>;
}

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]', '::1']);

export function isLoopback(hostname: string): boolean {
  return LOOPBACK.has(hostname) || hostname.endsWith('.localhost');
}

/**
 * DNS suffixes of Azure and Microsoft service endpoints (public and sovereign clouds): a request to
 * one of them that no emulator claims is an Azure call the sandbox does not cover.
 */
const AZURE_SUFFIXES = [
  'azure.com',
  'azure.net',
  'windows.net',
  'microsoftonline.com',
  'microsoft.com',
  'azure-api.net',
  'azurecr.io',
  'loganalytics.io',
  'loganalytics.us',
  'azure.us',
  'usgovcloudapi.net',
  'microsoftonline.us',
  'chinacloudapi.cn',
  'azure.cn',
];

/**
 * Azure hosts that serve customers' webhook endpoints, not Azure APIs: Logic Apps request triggers
 * (older Teams Workflows URLs, `https://prod-NN.<region>.logic.azure.com/workflows/<id>/triggers/manual/paths/invoke?...&sig=`).
 * Newer Workflows URLs (`*.environment.api.powerplatform.com`) and Teams incoming webhooks
 * (`*.webhook.office.com`) are outside the Azure suffixes anyway.
 */
const WEBHOOK_SUFFIXES = ['logic.azure.com', 'logic.azure.us', 'logic.azure.cn'];

function hasSuffix(hostname: string, suffix: string): boolean {
  return hostname === suffix || hostname.endsWith(`.${suffix}`);
}

/** True for an Azure / Microsoft service host (lower case) that is not a webhook endpoint host. */
function isAzureServiceHost(hostname: string): boolean {
  if (WEBHOOK_SUFFIXES.some((suffix) => hasSuffix(hostname, suffix))) return false;
  return AZURE_SUFFIXES.some((suffix) => hasSuffix(hostname, suffix));
}

function notEmulated(hostname: string): SandboxReply {
  return azureError(
    501,
    'NotImplemented',
    `The host '${hostname}' is not emulated by the sandbox: no sandbox service answers for it. ` +
      'Emulate the service (see docs/sandbox.md, "Adding a service") or keep the call out of sandbox runs.',
  );
}

/**
 * What `@azure/core-rest-pipeline`'s Node HTTP client throws when DNS has no name for the host:
 * a `RestError` named `RestError`, `code: 'ENOTFOUND'`, message `getaddrinfo ENOTFOUND <host>` (the
 * socket error's), the request attached, no `statusCode` and no `response` (checked against the real
 * client on an unresolvable host). SDK retry policies treat it as a transient system error and retry.
 */
export function unknownHost(request: PipelineRequest, hostname: string): RestError {
  return new RestError(`getaddrinfo ENOTFOUND ${hostname}`, { code: 'ENOTFOUND', request });
}

/**
 * One request that reached the sandbox (loopback traffic excepted), as `observe` receives it: never a
 * body, a header or a query string. `path` is the URL path, except for the webhook sink, whose URLs
 * carry their credential in the path: only the first segment is kept there.
 */
export interface RoutedRequest {
  /** The emulator's name (`arm`, `keyvault`, `cosmosdb`...), `webhook-sink`, or `not-emulated`. */
  service: string;
  method: string;
  host: string;
  path: string;
  /** The status answered; `null` when the host did not resolve (the transport threw `ENOTFOUND`). */
  status: number | null;
}

function recordedPath(service: string, url: URL): string {
  if (service !== 'webhook-sink') return url.pathname;
  const first = url.pathname.split('/').find((s) => s !== '');
  return first === undefined ? '/' : `/${first}${url.pathname.length > first.length + 1 ? '/***' : ''}`;
}

/**
 * The `HttpClient` SDK clients get in sandbox runs: loopback to the real network, an emulated host to
 * its emulator (or `ENOTFOUND` when the emulator does not resolve it), an un-emulated Azure host to
 * a 501, anything else to `fallback` (the webhook sink). `observe` sees every non-loopback request
 * (the sandbox's request log, which counts remote calls).
 */
export function createRoutingHttpClient(
  services: ServiceEmulator[],
  fallback: ServiceEmulator,
  observe?: (request: RoutedRequest) => void,
): HttpClient {
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
      const url = new URL(request.url);
      const note = (service: string, status: number | null) =>
        observe?.({
          service,
          method: request.method.toUpperCase(),
          host: hostname,
          path: recordedPath(service, url),
          status,
        });
      const emulator = services.find((s) => s.matches(hostname));
      if (emulator?.resolves && !emulator.resolves(hostname)) {
        note(emulator.name, null);
        throw unknownHost(request, hostname);
      }
      if (!emulator && isAzureServiceHost(hostname)) {
        note('not-emulated', 501);
        return toPipelineResponse(request, notEmulated(hostname));
      }
      const service = emulator ?? fallback;
      let reply: SandboxReply;
      try {
        reply = await service.handle(await toSandboxRequest(request));
      } catch (err) {
        // A transport failure an emulator stands for (no answer at all): thrown as the real client would.
        if (err instanceof RestError && err.statusCode === undefined) throw err;
        reply = azureError(
          500,
          'InternalServerError',
          `sandbox ${service.name} failed: ${err instanceof Error ? err.message : String(err)}`,
        );
      }
      note(service.name, reply.status);
      return toPipelineResponse(request, reply);
    },
  };
}

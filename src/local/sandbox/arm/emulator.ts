/**
 * Azure Resource Manager (`management.azure.com`, and the regional `{region}.management.azure.com`
 * that providers name in their `Location` headers): the front door every management call goes
 * through, with ARM's own checks in ARM's order and words, then routing by resource id to the
 * emulated providers (`ArmProvider`, one per namespace).
 *
 * 1. `api-version` is required: 400 `MissingApiVersionParameter` (ARM answers it before looking at
 *    the token: an anonymous browser GET of management.azure.com gets it); a value that is not a
 *    date (`YYYY-MM-DD[-preview]`) is 400 `InvalidApiVersionParameter`.
 * 2. A bearer token of the ARM audience (`https://management.azure.com` or
 *    `https://management.core.windows.net`, the scope `https://management.azure.com/.default`):
 *    401 `AuthenticationFailed` when the header is missing, `AuthenticationFailedInvalidHeader` when
 *    it is not `Bearer`, `InvalidAuthenticationToken` for a token the sandbox did not issue,
 *    `ExpiredAuthenticationToken`, `InvalidAuthenticationTokenAudience` (the message lists the
 *    allowed audiences, as ARM's does), each with ARM's challenge header
 *    (`Bearer authorization_uri="https://login.windows.net/{tenant}", error="invalid_token", ...`).
 * 3. 404 `SubscriptionNotFound` ("The subscription '{id}' could not be found."), 404
 *    `ResourceGroupNotFound` ("Resource group '{rg}' could not be found."), 404 `ResourceNotFound`
 *    ("The Resource '{ns}/{type}/{name}' under resource group '{rg}' was not found. For more details
 *    please go to https://aka.ms/ARMResourceNotFoundFix").
 * 4. A body that is not JSON: 400 `InvalidRequestContent`.
 *
 * A namespace, type or operation the sandbox does not emulate answers 501 `NotImplemented` naming it,
 * so that a call the sandbox does not cover fails loudly instead of pretending. Errors use ARM's
 * shape `{ "error": { "code", "message" } }`.
 */
import type { SandboxCredential } from '../credential';
import { bearerToken } from '../credential';
import { azureError, parseJson, type SandboxReply, type SandboxRequest } from '../http';
import type { ServiceEmulator } from '../router';
import { ARM_HOST, type ArmOperations } from './operations';
import { type ArmPath, parseArmPath } from './resourceId';

export const ARM_RESOURCE = 'https://management.azure.com';
/** The audiences ARM accepts, in the order its error message lists them. */
const ALLOWED_AUDIENCES = [
  'https://management.core.windows.net/',
  'https://management.core.windows.net',
  'https://management.azure.com/',
  'https://management.azure.com',
];
const API_VERSION = /^\d{4}-\d{2}-\d{2}(-(preview|alpha|beta|privatepreview))?$/i;

export type ResourcePath = Extract<ArmPath, { kind: 'resource' }>;
export type ProviderPath = Extract<ArmPath, { kind: 'providerPath' }>;

/** One management request as a provider sees it, after ARM's checks. */
export interface ArmRequest {
  readonly method: string;
  readonly url: URL;
  readonly apiVersion: string;
  readonly path: ResourcePath;
  /** The parsed JSON body; `undefined` when the request had none. */
  readonly body: unknown;
  /** The subscription and resource group with the scenario's casing. */
  readonly subscriptionId: string;
  readonly resourceGroup: string;
}

/**
 * A request on a provider path that is not a resource of a resource group (a location-scoped
 * collection, a tenant-level name check, an extension resource under a subscription scope), after
 * ARM's checks (api-version, token, subscription).
 */
export interface ArmProviderPathRequest {
  readonly method: string;
  readonly url: URL;
  readonly apiVersion: string;
  readonly path: ProviderPath;
  readonly body: unknown;
  /** The scenario's subscription (undefined for a tenant-level path). */
  readonly subscriptionId: string | undefined;
}

/** An emulated resource provider (`Microsoft.DocumentDB`, `Microsoft.Storage`, ...). */
export interface ArmProvider {
  /** Canonical namespace, e.g. `Microsoft.DocumentDB`. */
  readonly namespace: string;
  /** Canonical names of the emulated top-level types, e.g. `databaseAccounts`. */
  readonly types: readonly string[];
  /** The top-level resource named (case-insensitive), with its resource group; undefined when absent. */
  lookup(type: string, name: string): { name: string; resourceGroup: string } | undefined;
  /** Handles a request on an existing top-level resource (or below it). */
  handle(request: ArmRequest): SandboxReply | Promise<SandboxReply>;
  /**
   * Handles a provider path outside resource groups (`ArmProviderPathRequest`); absent: such paths
   * answer 501.
   */
  handleProviderPath?(request: ArmProviderPathRequest): SandboxReply | Promise<SandboxReply>;
}

/** 501 for a management call the sandbox does not emulate. */
export function notEmulated(method: string, path: string, what: string): SandboxReply {
  return azureError(
    501,
    'NotImplemented',
    `The sandbox does not emulate ${method} ${path} (${what}). See docs/sandbox.md, "Resource Manager".`,
  );
}

/** ARM's 404 for a missing resource, in its words. */
export function resourceNotFound(namespace: string, types: string, resourceGroup: string): SandboxReply {
  return azureError(
    404,
    'ResourceNotFound',
    `The Resource '${namespace}/${types}' under resource group '${resourceGroup}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix`,
  );
}

export class ArmEmulator implements ServiceEmulator {
  readonly name = 'arm';
  private readonly providers = new Map<string, ArmProvider>();

  constructor(
    private readonly credential: SandboxCredential,
    private readonly tenantId: string,
    private readonly subscriptionId: string,
    /** Resource groups of the scenario (any casing). */
    private readonly resourceGroups: ReadonlySet<string>,
    private readonly operations: ArmOperations,
  ) {}

  register(provider: ArmProvider): void {
    this.providers.set(provider.namespace.toLowerCase(), provider);
  }

  matches(hostname: string): boolean {
    return hostname === ARM_HOST || hostname.endsWith(`.${ARM_HOST}`);
  }

  async handle(req: SandboxRequest): Promise<SandboxReply> {
    const apiVersion = req.url.searchParams.get('api-version');
    if (apiVersion === null || apiVersion === '') {
      return azureError(
        400,
        'MissingApiVersionParameter',
        'The api-version query parameter (?api-version=) is required for all requests.',
      );
    }
    const denied = this.authenticate(req.headers.get('authorization'));
    if (denied) return denied;
    if (!API_VERSION.test(apiVersion)) {
      return azureError(
        400,
        'InvalidApiVersionParameter',
        `The api-version '${apiVersion}' is invalid. The supported versions are dates such as '2025-04-15'.`,
      );
    }

    const path = parseArmPath(req.url.pathname);
    if (path.kind === 'unknown') return notEmulated(req.method, req.url.pathname, path.reason);
    if (path.kind === 'providerPath' && path.subscriptionId === undefined)
      return this.providerPath(req, path);
    if (path.subscriptionId!.toLowerCase() !== this.subscriptionId.toLowerCase()) {
      return azureError(
        404,
        'SubscriptionNotFound',
        `The subscription '${path.subscriptionId}' could not be found.`,
      );
    }
    if (path.kind === 'subscription') return notEmulated(req.method, req.url.pathname, 'subscriptions');
    if (path.kind === 'providerPath') return this.providerPath(req, path);
    if (path.kind === 'operation') {
      const provider = this.providers.get(path.namespace.toLowerCase());
      if (!provider) return notEmulated(req.method, req.url.pathname, `namespace ${path.namespace}`);
      if (req.method !== 'GET') return notEmulated(req.method, req.url.pathname, 'operations are read-only');
      return this.operations.read(provider.namespace, path.collection, path.operationId);
    }

    const group = this.group(path.resourceGroup);
    if (group === undefined) {
      return azureError(
        404,
        'ResourceGroupNotFound',
        `Resource group '${path.resourceGroup}' could not be found.`,
      );
    }
    if (path.kind === 'resourceGroup') {
      if (req.method !== 'GET') return notEmulated(req.method, req.url.pathname, 'resource group writes');
      return {
        status: 200,
        body: {
          id: `/subscriptions/${this.subscriptionId}/resourceGroups/${group}`,
          name: group,
          type: 'Microsoft.Resources/resourceGroups',
          location: 'westeurope',
          properties: { provisioningState: 'Succeeded' },
        },
      };
    }

    const provider = this.providers.get(path.namespace.toLowerCase());
    if (!provider) return notEmulated(req.method, req.url.pathname, `namespace ${path.namespace}`);
    const top = path.chain[0]!;
    const type = provider.types.find((t) => t.toLowerCase() === top.type.toLowerCase());
    if (!type) return notEmulated(req.method, req.url.pathname, `type ${provider.namespace}/${top.type}`);
    const found = provider.lookup(type, top.name);
    if (!found || found.resourceGroup.toLowerCase() !== group.toLowerCase()) {
      return resourceNotFound(provider.namespace, `${type}/${top.name}`, path.resourceGroup);
    }

    let body: unknown;
    if (req.bodyText !== undefined && req.bodyText.trim() !== '') {
      const parsed = parseJson(req.bodyText);
      if (!parsed.ok) {
        return azureError(
          400,
          'InvalidRequestContent',
          `The request content was invalid and could not be deserialized: ${parsed.reason}.`,
        );
      }
      body = parsed.value;
    }
    return provider.handle({
      method: req.method,
      url: req.url,
      apiVersion,
      path,
      body,
      subscriptionId: this.subscriptionId,
      resourceGroup: group,
    });
  }

  private providerPath(req: SandboxRequest, path: ProviderPath): SandboxReply | Promise<SandboxReply> {
    const provider = this.providers.get(path.namespace.toLowerCase());
    if (!provider?.handleProviderPath)
      return notEmulated(req.method, req.url.pathname, `provider paths of ${path.namespace}`);
    let body: unknown;
    if (req.bodyText !== undefined && req.bodyText.trim() !== '') {
      const parsed = parseJson(req.bodyText);
      if (!parsed.ok) {
        return azureError(
          400,
          'InvalidRequestContent',
          `The request content was invalid and could not be deserialized: ${parsed.reason}.`,
        );
      }
      body = parsed.value;
    }
    return provider.handleProviderPath({
      method: req.method,
      url: req.url,
      apiVersion: req.url.searchParams.get('api-version')!,
      path,
      body,
      subscriptionId: path.subscriptionId === undefined ? undefined : this.subscriptionId,
    });
  }

  private group(name: string): string | undefined {
    for (const group of this.resourceGroups) if (group.toLowerCase() === name.toLowerCase()) return group;
    return undefined;
  }

  private challenge(code: string, message: string): SandboxReply {
    return azureError(401, code, message, {
      headers: {
        'www-authenticate': `Bearer authorization_uri="https://login.windows.net/${this.tenantId}", error="invalid_token", error_description="${message}"`,
      },
    });
  }

  private authenticate(authorization: string | undefined): SandboxReply | undefined {
    if (!authorization) {
      return this.challenge(
        'AuthenticationFailed',
        "Authentication failed. The 'Authorization' header is missing.",
      );
    }
    const token = bearerToken(authorization);
    if (!token) {
      return this.challenge(
        'AuthenticationFailedInvalidHeader',
        "Authentication failed. The 'Authorization' header is provided in an invalid format.",
      );
    }
    const info = this.credential.inspect(token);
    if (!info) return this.challenge('InvalidAuthenticationToken', 'The access token is invalid.');
    if (info.expiresOnTimestamp <= Date.now()) {
      return this.challenge(
        'ExpiredAuthenticationToken',
        `The access token expiry UTC time '${new Date(info.expiresOnTimestamp).toISOString()}' is earlier than current UTC time '${new Date().toISOString()}'.`,
      );
    }
    if (!ALLOWED_AUDIENCES.includes(info.audience)) {
      return this.challenge(
        'InvalidAuthenticationTokenAudience',
        `The access token has been obtained for wrong audience or resource '${info.audience}'. It should exactly match with one of the allowed audiences ${ALLOWED_AUDIENCES.map((a) => `'${a}'`).join(',')}.`,
      );
    }
    return undefined;
  }
}

import { StorageManagementClient } from '@azure/arm-storage';
import type { TokenCredential } from '@azure/core-auth';
import {
  createDefaultHttpClient,
  createHttpHeaders,
  createPipelineRequest,
  type HttpClient,
} from '@azure/core-rest-pipeline';
import {
  BlobServiceClient,
  type HttpOperationResponse,
  type RequestPolicy,
  StorageSharedKeyCredential,
  type WebResource,
} from '@azure/storage-blob';
import { registerSecret } from '../core/redact';
import type {
  KeyCallOptions,
  KeyPair,
  KeyProvider,
  KeySlot,
  KeyTestResult,
  ProvidedKey,
} from '../ports/keys';
import {
  type ArmAdapterOptions,
  armClientOptions,
  ClientsBySubscription,
  keyError,
  parseArmId,
  providedKey,
} from './armKeys';

const NAMESPACE = 'Microsoft.Storage';
const SHAPES = [['storageaccounts']];
const NAMES: Record<KeySlot, 'key1' | 'key2'> = { primary: 'key1', secondary: 'key2' };

/**
 * `@azure/storage-blob` takes its transport as a core-http (v1) `RequestPolicy`; the platform gives a
 * core-rest-pipeline (v2) `HttpClient`. This wraps the one as the other with storage-blob's public
 * types only: the request is rebuilt from the `WebResource`, the answer handed back with the
 * request's own headers class, which storage-blob converts back to v2 itself.
 */
function asRequestPolicy(client: HttpClient): RequestPolicy {
  return {
    async sendRequest(resource: WebResource): Promise<HttpOperationResponse> {
      const request = createPipelineRequest({
        url: resource.url,
        method: resource.method,
        headers: createHttpHeaders(resource.headers.rawHeaders()),
        body: resource.body as string | undefined,
        abortSignal: resource.abortSignal,
        timeout: resource.timeout,
        streamResponseStatusCodes: resource.streamResponseStatusCodes,
      });
      const response = await client.sendRequest(request);
      const headers = resource.headers.clone();
      for (const name of headers.headerNames()) headers.remove(name);
      for (const [name, value] of response.headers) headers.set(name, value);
      return {
        request: resource,
        status: response.status,
        headers,
        bodyAsText: response.bodyAsText,
        readableStreamBody: response.readableStreamBody,
        blobBody: response.blobBody,
      };
    },
  };
}

/**
 * `KeyProvider` for a Storage account's keys (`key1` = primary, `key2` = secondary) over
 * `@azure/arm-storage`. Keys are tested with the real `@azure/storage-blob` client signing a
 * Shared Key request: list containers, one item (`GET /?comp=list&maxresults=1`).
 */
export class StorageAccountKeys implements KeyProvider {
  readonly kind = 'storage' as const;
  private readonly clients: ClientsBySubscription<StorageManagementClient>;
  private readonly transport: RequestPolicy;

  constructor(
    credential: TokenCredential,
    private readonly options: ArmAdapterOptions & {
      /** `core.windows.net` (sovereign clouds differ). */
      endpointSuffix?: string;
    } = {},
  ) {
    this.clients = new ClientsBySubscription(
      (sub) => new StorageManagementClient(credential, sub, armClientOptions(options)),
    );
    this.transport = asRequestPolicy(options.httpClient ?? createDefaultHttpClient());
  }

  private suffix(): string {
    return this.options.endpointSuffix ?? 'core.windows.net';
  }

  private pairOf(
    resourceId: string,
    account: string,
    keys: Array<{ keyName?: string; value?: string }>,
    withValues: boolean,
  ): KeyPair {
    const byName = new Map(keys.map((k) => [k.keyName?.toLowerCase(), k.value]));
    for (const value of byName.values()) if (typeof value === 'string' && value !== '') registerSecret(value);
    const what = `Storage account ${account}`;
    return {
      kind: this.kind,
      resourceId,
      primary: providedKey('primary', 'key1', byName.get('key1'), withValues, what),
      secondary: providedKey('secondary', 'key2', byName.get('key2'), withValues, what),
    };
  }

  /** Both keys. Needs `Microsoft.Storage/storageAccounts/listkeys/action`. One ARM call. */
  async listKeys(
    resourceId: string,
    options: KeyCallOptions & { withValues?: boolean } = {},
  ): Promise<KeyPair> {
    const id = parseArmId(resourceId, NAMESPACE, SHAPES);
    const account = id.names[0]!;
    try {
      const result = await this.clients
        .get(id.subscriptionId)
        .storageAccounts.listKeys(id.resourceGroup, account, { abortSignal: options.abortSignal });
      return this.pairOf(resourceId, account, result.keys ?? [], options.withValues === true);
    } catch (error) {
      throw keyError(error, `listing the keys of Storage account ${account}`, resourceId);
    }
  }

  /**
   * Regenerates `key1` (primary) or `key2` (secondary); the answer carries the new value. Needs
   * `Microsoft.Storage/storageAccounts/regeneratekey/action` (with `listkeys/action`: the built-in
   * "Storage Account Key Operator Service Role"). One ARM call.
   */
  async regenerateKey(
    resourceId: string,
    slot: KeySlot,
    options: KeyCallOptions = {},
  ): Promise<ProvidedKey & { value: string }> {
    const id = parseArmId(resourceId, NAMESPACE, SHAPES);
    const account = id.names[0]!;
    const keyName = NAMES[slot];
    let pair: KeyPair;
    try {
      const result = await this.clients
        .get(id.subscriptionId)
        .storageAccounts.regenerateKey(
          id.resourceGroup,
          account,
          { keyName },
          { abortSignal: options.abortSignal },
        );
      pair = this.pairOf(resourceId, account, result.keys ?? [], true);
    } catch (error) {
      throw keyError(error, `regenerating ${keyName} of Storage account ${account}`, resourceId);
    }
    const key = pair[slot];
    return { ...key, value: key.value! };
  }

  /**
   * Lists one container with the key through the Blob service. Needs no Azure RBAC permission (the
   * key is the credential) but the account must allow Shared Key access. Accepted on 200; refused on
   * 403 `AuthenticationFailed` (the signature); anything else throws (a 403 for the firewall or
   * `KeyBasedAuthenticationNotPermitted` says nothing about the key).
   */
  async testKey(resourceId: string, value: string, options: KeyCallOptions = {}): Promise<KeyTestResult> {
    const id = parseArmId(resourceId, NAMESPACE, SHAPES);
    const account = id.names[0]!;
    registerSecret(value);
    const service = new BlobServiceClient(
      `https://${account}.blob.${this.suffix()}`,
      new StorageSharedKeyCredential(account, value),
      { httpClient: this.transport, retryOptions: { maxTries: 3 } },
    );
    try {
      await service.listContainers({ abortSignal: options.abortSignal }).byPage({ maxPageSize: 1 }).next();
      return { accepted: true, status: 200, detail: '200 list containers' };
    } catch (error) {
      const e = error as { statusCode?: number; code?: string; details?: { errorCode?: string } };
      const code = e.code ?? e.details?.errorCode;
      if (e.statusCode === 403 && code === 'AuthenticationFailed') {
        return {
          accepted: false,
          status: 403,
          detail: '403 AuthenticationFailed: the signature was refused',
        };
      }
      throw keyError(error, `testing a key of Storage account ${account}`, resourceId);
    }
  }

  /** `DefaultEndpointsProtocol=https;AccountName={account};AccountKey={key};EndpointSuffix=core.windows.net`. */
  connectionString(resourceId: string, value: string): string {
    const account = parseArmId(resourceId, NAMESPACE, SHAPES).names[0]!;
    return `DefaultEndpointsProtocol=https;AccountName=${account};AccountKey=${value};EndpointSuffix=${this.suffix()}`;
  }
}

import { createHmac } from 'node:crypto';
import { type AccessKeys, ServiceBusManagementClient } from '@azure/arm-servicebus';
import type { TokenCredential } from '@azure/core-auth';
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
  DataPlaneProbe,
  keyError,
  type ParsedArmId,
  parseArmId,
  providedKey,
} from './armKeys';

const NAMESPACE = 'Microsoft.ServiceBus';
const SHAPES = [
  ['namespaces', 'authorizationrules'],
  ['namespaces', 'queues', 'authorizationrules'],
  ['namespaces', 'topics', 'authorizationrules'],
];
const KEY_TYPES: Record<KeySlot, 'PrimaryKey' | 'SecondaryKey'> = {
  primary: 'PrimaryKey',
  secondary: 'SecondaryKey',
};
/** Lifetime of the SAS token a key test signs: long enough for the request and its retries. */
const TOKEN_SECONDS = 300;

interface Rule {
  id: ParsedArmId;
  namespace: string;
  entity: { type: 'queues' | 'topics'; name: string } | undefined;
  rule: string;
}

function ruleOf(resourceId: string): Rule {
  const id = parseArmId(resourceId, NAMESPACE, SHAPES);
  const entity =
    id.names.length === 3 ? { type: id.types[1] as 'queues' | 'topics', name: id.names[1]! } : undefined;
  return { id, namespace: id.names[0]!, entity, rule: id.names[id.names.length - 1]! };
}

function describeRule(r: Rule): string {
  return r.entity
    ? `SAS rule ${r.rule} of ${r.entity.type.slice(0, -1)} ${r.entity.name} in Service Bus namespace ${r.namespace}`
    : `SAS rule ${r.rule} of Service Bus namespace ${r.namespace}`;
}

/**
 * A Service Bus SAS token (Service Bus "Shared Access Signature authentication"): HMAC-SHA256 keyed
 * with the key's UTF-8 bytes over `{url-encoded resource URI}\n{expiry}`.
 */
export function serviceBusSasToken(
  resourceUri: string,
  keyName: string,
  key: string,
  expiresOnSeconds: number,
): string {
  const sr = encodeURIComponent(resourceUri);
  const sig = createHmac('sha256', key).update(`${sr}\n${expiresOnSeconds}`, 'utf8').digest('base64');
  return `SharedAccessSignature sr=${sr}&sig=${encodeURIComponent(sig)}&se=${expiresOnSeconds}&skn=${encodeURIComponent(keyName)}`;
}

/**
 * `KeyProvider` for a Service Bus SAS authorization rule's keys (`primaryKey` / `secondaryKey`) over
 * `@azure/arm-servicebus`: a namespace rule (`.../namespaces/{ns}/authorizationRules/{rule}`) or a
 * queue / topic rule (`.../namespaces/{ns}/queues|topics/{entity}/authorizationRules/{rule}`). Keys
 * are tested with a SAS-signed management read on the namespace's HTTPS endpoint: the namespace's
 * queue listing for a namespace rule, the entity's description for an entity rule. A rule without
 * the Manage right cannot read them, but Service Bus checks the signature first: its "claims
 * required" refusal proves the key valid, its `InvalidSignature` refusal proves it dead.
 */
export class ServiceBusKeys implements KeyProvider {
  readonly kind = 'serviceBus' as const;
  private readonly clients: ClientsBySubscription<ServiceBusManagementClient>;
  private readonly probe: DataPlaneProbe;

  constructor(
    credential: TokenCredential,
    private readonly options: ArmAdapterOptions & {
      /** `servicebus.windows.net` (sovereign clouds differ). */
      dnsSuffix?: string;
    } = {},
  ) {
    this.clients = new ClientsBySubscription(
      (sub) => new ServiceBusManagementClient(credential, sub, armClientOptions(options)),
    );
    this.probe = new DataPlaneProbe(this.kind, options);
  }

  private host(r: Rule): string {
    return `${r.namespace}.${this.options.dnsSuffix ?? 'servicebus.windows.net'}`;
  }

  private pairOf(resourceId: string, r: Rule, keys: AccessKeys, withValues: boolean): KeyPair {
    for (const value of [
      keys.primaryKey,
      keys.secondaryKey,
      keys.primaryConnectionString,
      keys.secondaryConnectionString,
    ]) {
      if (typeof value === 'string' && value !== '') registerSecret(value);
    }
    const what = describeRule(r);
    return {
      kind: this.kind,
      resourceId,
      primary: providedKey('primary', 'primaryKey', keys.primaryKey, withValues, what),
      secondary: providedKey('secondary', 'secondaryKey', keys.secondaryKey, withValues, what),
    };
  }

  /**
   * Both keys of the rule. Needs `Microsoft.ServiceBus/namespaces/authorizationRules/listKeys/action`
   * (namespace rule) or `Microsoft.ServiceBus/namespaces/queues/authorizationRules/listKeys/action` /
   * `Microsoft.ServiceBus/namespaces/topics/authorizationRules/listKeys/action` (entity rule). One
   * ARM call. The deployment grants exactly these on the rule (scripts/infra-params.ts).
   */
  async listKeys(
    resourceId: string,
    options: KeyCallOptions & { withValues?: boolean } = {},
  ): Promise<KeyPair> {
    const r = ruleOf(resourceId);
    const client = this.clients.get(r.id.subscriptionId);
    const opts = { abortSignal: options.abortSignal };
    try {
      const keys = !r.entity
        ? await client.namespaces.listKeys(r.id.resourceGroup, r.namespace, r.rule, opts)
        : r.entity.type === 'queues'
          ? await client.queues.listKeys(r.id.resourceGroup, r.namespace, r.entity.name, r.rule, opts)
          : await client.topics.listKeys(r.id.resourceGroup, r.namespace, r.entity.name, r.rule, opts);
      return this.pairOf(resourceId, r, keys, options.withValues === true);
    } catch (error) {
      throw keyError(error, `listing the keys of ${describeRule(r)}`, resourceId);
    }
  }

  /**
   * Regenerates `primaryKey` or `secondaryKey` (`regenerateKeys` with `keyType` PrimaryKey /
   * SecondaryKey); the answer carries the new value. Needs
   * `Microsoft.ServiceBus/namespaces/authorizationRules/regenerateKeys/action` or the queue / topic
   * form of it (`Microsoft.ServiceBus/namespaces/queues/authorizationRules/regenerateKeys/action`,
   * `Microsoft.ServiceBus/namespaces/topics/authorizationRules/regenerateKeys/action`). One ARM call.
   */
  async regenerateKey(
    resourceId: string,
    slot: KeySlot,
    options: KeyCallOptions = {},
  ): Promise<ProvidedKey & { value: string }> {
    const r = ruleOf(resourceId);
    const client = this.clients.get(r.id.subscriptionId);
    const params = { keyType: KEY_TYPES[slot] };
    const opts = { abortSignal: options.abortSignal };
    let pair: KeyPair;
    try {
      const keys = !r.entity
        ? await client.namespaces.regenerateKeys(r.id.resourceGroup, r.namespace, r.rule, params, opts)
        : r.entity.type === 'queues'
          ? await client.queues.regenerateKeys(
              r.id.resourceGroup,
              r.namespace,
              r.entity.name,
              r.rule,
              params,
              opts,
            )
          : await client.topics.regenerateKeys(
              r.id.resourceGroup,
              r.namespace,
              r.entity.name,
              r.rule,
              params,
              opts,
            );
      pair = this.pairOf(resourceId, r, keys, true);
    } catch (error) {
      throw keyError(error, `regenerating the ${KEY_TYPES[slot]} of ${describeRule(r)}`, resourceId);
    }
    const key = pair[slot];
    return { ...key, value: key.value! };
  }

  /**
   * A SAS-signed read of the namespace's queue listing (namespace rule) or of the entity (entity
   * rule). No Azure RBAC permission: the key is the credential. 200, or 401 "claims required" (a
   * rule without Manage): accepted; 401 `InvalidSignature` / `ExpiredToken` / `InvalidAudience`:
   * refused; anything else throws.
   */
  async testKey(resourceId: string, value: string, options: KeyCallOptions = {}): Promise<KeyTestResult> {
    const r = ruleOf(resourceId);
    registerSecret(value);
    const base = `https://${this.host(r)}`;
    const target = r.entity ? `${base}/${encodeURIComponent(r.entity.name)}` : `${base}/$Resources/queues`;
    const audience = r.entity ? `${base}/${r.entity.name}` : `${base}/`;
    const now = Math.floor((this.options.authNow?.() ?? new Date()).getTime() / 1000);
    const token = serviceBusSasToken(audience, r.rule, value, now + TOKEN_SECONDS);
    let response: Awaited<ReturnType<DataPlaneProbe['get']>>;
    try {
      response = await this.probe.get(
        `${target}?api-version=2021-05${r.entity ? '' : '&$skip=0&$top=1'}`,
        { authorization: token, accept: 'application/xml' },
        options.abortSignal,
      );
    } catch (error) {
      throw keyError(error, `testing a key of ${describeRule(r)}`, resourceId);
    }
    const detail =
      /<Detail>([^<]*)<\/Detail>/
        .exec(response.bodyAsText ?? '')?.[1]
        ?.split(' TrackingId:')[0]
        ?.trim() ?? '';
    if (response.status === 200)
      return { accepted: true, status: 200, detail: this.probe.describe(response, 'management read') };
    if (
      response.status === 401 &&
      /claims? (are )?required|Authorization failed for specified action/i.test(detail)
    ) {
      return {
        accepted: true,
        status: 401,
        detail: `401 the key is valid; the rule lacks Manage (${detail})`,
      };
    }
    if (response.status === 401) return { accepted: false, status: 401, detail: `401 ${detail}` };
    throw this.probe.inconclusive(response, `testing a key of ${describeRule(r)}`, resourceId);
  }

  /** `Endpoint=sb://{ns}.servicebus.windows.net/;SharedAccessKeyName={rule};SharedAccessKey={key}[;EntityPath={entity}]`. */
  connectionString(resourceId: string, value: string): string {
    const r = ruleOf(resourceId);
    const base = `Endpoint=sb://${this.host(r)}/;SharedAccessKeyName=${r.rule};SharedAccessKey=${value}`;
    return r.entity ? `${base};EntityPath=${r.entity.name}` : base;
  }
}

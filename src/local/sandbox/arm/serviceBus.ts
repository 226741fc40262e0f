/**
 * Service Bus namespaces: the management operations on SAS authorization rules
 * (`Microsoft.ServiceBus`) and the SAS check of the namespace's HTTPS endpoint
 * (`https://{namespace}.servicebus.windows.net`). The AMQP broker the local host's triggers use is
 * a separate emulation (`src/local/sandbox/servicebus/`).
 *
 * Management, as azure-rest-api-specs servicebus `Namespaces_* / Queues_* / Topics_*`
 * (test/fixtures/rest/servicebus): for a namespace rule
 * (`.../namespaces/{ns}/authorizationRules/{rule}`) and a queue or topic rule
 * (`.../namespaces/{ns}/queues|topics/{entity}/authorizationRules/{rule}`):
 * - `GET` the rule: `{ id, name, type, location, properties: { rights } }`;
 * - `POST .../listKeys`: 200 `{ primaryConnectionString, secondaryConnectionString, primaryKey,
 *   secondaryKey, keyName }` (connection strings with `;EntityPath={entity}` for an entity rule);
 * - `POST .../regenerateKeys` `{ keyType: PrimaryKey | SecondaryKey, key? }`: 200, the same body,
 *   the named key replaced by a new random one or by `key` when given (the sandbox takes a non-empty
 *   string of at most 256 characters there; the service's own rule for `key` is not documented).
 *
 * Data plane (Service Bus "Authentication and authorization with Shared Access Signatures"):
 * `Authorization: SharedAccessSignature sr={url-encoded resource URI}&sig={url-encoded base64
 * HMAC-SHA256}&se={expiry, epoch seconds}&skn={rule}`, the HMAC keyed with the key's UTF-8 bytes over
 * `{sr as sent}\n{se}`. A token is accepted when `skn` names a rule of the namespace, or of the entity
 * addressed, `sr` covers the path addressed, `se` is not past (the machine's time) and the signature
 * matches either key of the rule. Emulated reads: `GET /$Resources/queues` and `/$Resources/topics`
 * (namespace listings) and `GET /{queue|topic}`, which need the Manage right. Refusals are 401 with
 * the service's XML body `<Error><Code>401</Code><Detail>...</Detail></Error>`: `MissingToken`,
 * `MalformedToken`, `ExpiredToken`, `InvalidAudience`, `InvalidSignature: The token has an invalid
 * signature.`, and, for a valid key of a rule without Manage, "Manage,EntityRead claims required for
 * this operation." (the wording the Go SDK's low-privilege tests assert).
 */
import { createHmac, randomUUID } from 'node:crypto';
import { azureError, type SandboxReply, type SandboxRequest } from '../http';
import type { ServiceEmulator } from '../router';
import { type ArmProvider, type ArmRequest, notEmulated } from './emulator';
import type { KeyRing, KeyRings } from './keyRing';
import { resourceIdOf } from './resourceId';
import type { ResolvedAuthorizationRule } from './scenario';
import { type NamespaceSku, patchSku, type SkuSpec, skuBody, skuOf } from './serviceBusCapacity';

export const SERVICE_BUS_NAMESPACE = 'Microsoft.ServiceBus';
export const SERVICE_BUS_HOST_SUFFIX = '.servicebus.windows.net';
export const SERVICE_BUS_KEY_NAMES = ['primaryKey', 'secondaryKey'] as const;
const SAS_KEY_BYTES = 32;
const KEY_TYPES: Record<string, (typeof SERVICE_BUS_KEY_NAMES)[number]> = {
  PrimaryKey: 'primaryKey',
  SecondaryKey: 'secondaryKey',
};

export interface ServiceBusRule extends ResolvedAuthorizationRule {
  keys: KeyRing;
}

export interface ServiceBusNamespace {
  name: string;
  resourceGroup: string;
  location: string;
  id: string;
  rules: ServiceBusRule[];
  queues: string[];
  topics: string[];
  /** Tier and premium messaging units (`serviceBusCapacity.ts`). */
  sku: NamespaceSku;
}

/** The string a SAS signature covers: the resource URI as sent in `sr` (URL-encoded), a newline, the expiry. */
export function sasStringToSign(encodedResourceUri: string, expiry: string): string {
  return `${encodedResourceUri}\n${expiry}`;
}

export class ServiceBusNamespaces implements ArmProvider {
  readonly namespace = SERVICE_BUS_NAMESPACE;
  readonly types = ['namespaces'] as const;
  private readonly namespaces = new Map<string, ServiceBusNamespace>();

  constructor(
    private readonly subscriptionId: string,
    private readonly rings: KeyRings,
    /** The sandbox clock's now (a messaging-unit change stays `Updating` for a while). */
    private readonly now: () => number = () => Date.now(),
  ) {}

  add(spec: {
    name: string;
    resourceGroup: string;
    location: string;
    rules: ResolvedAuthorizationRule[];
    queues: string[];
    topics: string[];
    sku?: SkuSpec;
  }): ServiceBusNamespace {
    const ns: ServiceBusNamespace = {
      ...spec,
      sku: skuOf(spec.sku),
      id: resourceIdOf(this.subscriptionId, spec.resourceGroup, SERVICE_BUS_NAMESPACE, [
        { type: 'namespaces', name: spec.name },
      ]),
      rules: spec.rules.map((rule) => ({
        ...rule,
        keys: this.rings.create(rule.id, 'serviceBusRule', SERVICE_BUS_KEY_NAMES, SAS_KEY_BYTES),
      })),
    };
    this.namespaces.set(spec.name.toLowerCase(), ns);
    return ns;
  }

  get(name: string): ServiceBusNamespace | undefined {
    return this.namespaces.get(name.toLowerCase());
  }

  all(): ServiceBusNamespace[] {
    return [...this.namespaces.values()];
  }

  lookup(_type: string, name: string) {
    return this.get(name);
  }

  /** `Endpoint=sb://{ns}.servicebus.windows.net/;SharedAccessKeyName={rule};SharedAccessKey={key}[;EntityPath={entity}]`. */
  connectionString(ns: ServiceBusNamespace, rule: ServiceBusRule, key: string): string {
    const base = `Endpoint=sb://${ns.name}${SERVICE_BUS_HOST_SUFFIX}/;SharedAccessKeyName=${rule.name};SharedAccessKey=${key}`;
    return rule.entity ? `${base};EntityPath=${rule.entity.name}` : base;
  }

  private accessKeys(ns: ServiceBusNamespace, rule: ServiceBusRule) {
    const primary = rule.keys.value('primaryKey');
    const secondary = rule.keys.value('secondaryKey');
    return {
      primaryConnectionString: this.connectionString(ns, rule, primary),
      secondaryConnectionString: this.connectionString(ns, rule, secondary),
      primaryKey: primary,
      secondaryKey: secondary,
      keyName: rule.name,
    };
  }

  private namespaceBody(ns: ServiceBusNamespace, apiVersion: string) {
    const { sku, provisioningState, ...premium } = skuBody(ns.sku, this.now());
    // Partitioned premium namespaces appeared in 2022-10-01-preview: older versions do not say.
    if (apiVersion.slice(0, 10) < '2022-10-01') delete premium.premiumMessagingPartitions;
    return {
      id: ns.id,
      name: ns.name,
      type: `${SERVICE_BUS_NAMESPACE}/Namespaces`,
      location: ns.location,
      sku,
      tags: {},
      properties: {
        provisioningState,
        status: 'Active',
        serviceBusEndpoint: `https://${ns.name}${SERVICE_BUS_HOST_SUFFIX}:443/`,
        disableLocalAuth: false,
        ...premium,
      },
    };
  }

  handle(req: ArmRequest): SandboxReply {
    const ns = this.get(req.path.chain[0]!.name)!;
    const chain = req.path.chain.slice(1);
    const lower = chain.map((c) => c.type.toLowerCase());
    let entity: { type: 'queues' | 'topics'; name: string } | undefined;
    let ruleName: string | undefined;
    if (lower.length === 0) {
      if (req.method === 'PATCH' && req.path.action === undefined) {
        const refused = patchSku(req.method, req.url.pathname, req.body, ns.sku, ns.name, this.now());
        if (refused) return refused;
        return { status: 200, body: this.namespaceBody(ns, req.apiVersion) };
      }
      if (req.method === 'GET' && req.path.action === undefined) {
        return { status: 200, body: this.namespaceBody(ns, req.apiVersion) };
      }
      return notEmulated(req.method, req.url.pathname, 'namespace operations other than GET and PATCH');
    }
    if (lower.length === 1 && lower[0] === 'authorizationrules') ruleName = chain[0]!.name;
    else if (
      lower.length === 2 &&
      lower[1] === 'authorizationrules' &&
      (lower[0] === 'queues' || lower[0] === 'topics')
    ) {
      const type = lower[0] as 'queues' | 'topics';
      const name = (type === 'queues' ? ns.queues : ns.topics).find(
        (e) => e.toLowerCase() === chain[0]!.name.toLowerCase(),
      );
      if (!name) {
        return azureError(
          404,
          'NotFound',
          `The messaging entity '${ns.name}/${chain[0]!.name}' could not be found.`,
        );
      }
      entity = { type, name };
      ruleName = chain[1]!.name;
    } else {
      return notEmulated(
        req.method,
        req.url.pathname,
        'Service Bus resources other than authorization rules',
      );
    }
    const rule = ns.rules.find(
      (r) =>
        r.name.toLowerCase() === ruleName!.toLowerCase() &&
        (r.entity === undefined) === (entity === undefined) &&
        (r.entity === undefined || (r.entity.type === entity!.type && r.entity.name === entity!.name)),
    );
    if (!rule) {
      return azureError(404, 'NotFound', `The authorization rule '${ruleName}' does not exist.`);
    }
    const action = req.path.action?.toLowerCase();
    if (action === undefined && req.method === 'GET') {
      return {
        status: 200,
        body: {
          id: rule.id,
          name: rule.name,
          type: entity
            ? `${SERVICE_BUS_NAMESPACE}/Namespaces/${entity.type === 'queues' ? 'Queues' : 'Topics'}/AuthorizationRules`
            : `${SERVICE_BUS_NAMESPACE}/Namespaces/AuthorizationRules`,
          location: ns.location,
          properties: { rights: rule.rights.slice() },
        },
      };
    }
    if (action === 'listkeys' && req.method === 'POST')
      return { status: 200, body: this.accessKeys(ns, rule) };
    if (action === 'regeneratekeys' && req.method === 'POST') {
      const body = (req.body ?? {}) as { keyType?: unknown; key?: unknown };
      const keyName = typeof body.keyType === 'string' ? KEY_TYPES[body.keyType] : undefined;
      if (!keyName) {
        return azureError(
          400,
          'BadRequest',
          `The keyType '${String(body.keyType)}' is not valid: expected PrimaryKey or SecondaryKey.`,
        );
      }
      if (
        body.key !== undefined &&
        (typeof body.key !== 'string' || body.key === '' || body.key.length > 256)
      ) {
        return azureError(400, 'BadRequest', 'The key must be a non-empty string of at most 256 characters.');
      }
      rule.keys.regenerate(keyName, body.key as string | undefined);
      return { status: 200, body: this.accessKeys(ns, rule) };
    }
    return notEmulated(req.method, req.url.pathname, `action ${req.path.action}`);
  }
}

/** The HTTPS endpoint of the scenario's namespaces, for what a key test needs. */
export class ServiceBusDataPlane implements ServiceEmulator {
  readonly name = 'servicebus';
  private trackers = 0;

  constructor(private readonly namespaces: ServiceBusNamespaces) {}

  matches(hostname: string): boolean {
    return hostname.endsWith(SERVICE_BUS_HOST_SUFFIX);
  }

  resolves(hostname: string): boolean {
    return this.namespaces.get(hostname.slice(0, -SERVICE_BUS_HOST_SUFFIX.length)) !== undefined;
  }

  async handle(req: SandboxRequest): Promise<SandboxReply> {
    const ns = this.namespaces.get(req.url.hostname.slice(0, -SERVICE_BUS_HOST_SUFFIX.length))!;
    const path = req.url.pathname.replace(/\/+$/, '');
    const refuse = (detail: string): SandboxReply => ({
      status: 401,
      headers: { 'content-type': 'application/xml; charset=utf-8' },
      body: `<Error><Code>401</Code><Detail>${escapeXml(detail)} TrackingId:${randomUUID()}_G${this.trackers++}, SystemTracker:${ns.name}${SERVICE_BUS_HOST_SUFFIX}:${escapeXml(path.slice(1))}, Timestamp:${new Date().toISOString()}</Detail></Error>`,
    });

    // What is addressed: a namespace listing or one entity.
    let entity: { type: 'queues' | 'topics'; name: string } | undefined;
    let listing: 'queues' | 'topics' | undefined;
    const lowerPath = path.toLowerCase();
    if (lowerPath === '/$resources/queues' || lowerPath === '/$resources/topics')
      listing = lowerPath.endsWith('queues') ? 'queues' : 'topics';
    else {
      const name = decodeURIComponent(path.slice(1));
      const queue = ns.queues.find((q) => q.toLowerCase() === name.toLowerCase());
      const topic = ns.topics.find((t) => t.toLowerCase() === name.toLowerCase());
      if (queue) entity = { type: 'queues', name: queue };
      else if (topic) entity = { type: 'topics', name: topic };
      else if (name !== '' && !name.includes('/')) entity = undefined;
      else
        return notEmulated(
          req.method,
          req.url.pathname,
          'Service Bus HTTPS: only GET /$Resources/queues|topics and GET /{entity}',
        );
    }
    if (req.method !== 'GET') return notEmulated(req.method, req.url.pathname, 'Service Bus HTTPS writes');

    const authorization = req.headers.get('authorization');
    if (!authorization) return refuse('MissingToken: The authorization header was not found.');
    const token = /^SharedAccessSignature\s+(.+)$/i.exec(authorization.trim())?.[1];
    if (!token)
      return refuse(
        'MalformedToken: The credentials contained in the authorization header are not in the SharedAccessSignature format.',
      );
    const fields = new Map<string, string>();
    for (const part of token.split('&')) {
      const eq = part.indexOf('=');
      if (eq > 0) fields.set(part.slice(0, eq).toLowerCase(), part.slice(eq + 1));
    }
    const sr = fields.get('sr');
    const sig = fields.get('sig');
    const se = fields.get('se');
    const skn = fields.get('skn');
    if (!sr || !sig || !se || !skn || !/^\d+$/.test(se)) {
      return refuse('MalformedToken: The token is missing sr, sig, se or skn.');
    }
    if (Number(se) * 1000 < Date.now()) return refuse('ExpiredToken: The token is expired.');
    let audience: string;
    try {
      audience = decodeURIComponent(sr)
        .replace(/^[a-z]+:\/\//i, '')
        .replace(/\/+$/, '')
        .toLowerCase();
    } catch {
      return refuse('MalformedToken: The sr parameter is not validly encoded.');
    }
    const addressed = `${req.url.hostname}${path}`.toLowerCase();
    if (addressed !== audience && !addressed.startsWith(`${audience}/`)) {
      return refuse('InvalidAudience: Invalid authorization token audience.');
    }
    const rule = ns.rules.find(
      (r) =>
        r.name === decodeURIComponent(skn) &&
        (r.entity === undefined ||
          (entity !== undefined && r.entity.type === entity.type && r.entity.name === entity.name)),
    );
    let signature: string;
    try {
      signature = decodeURIComponent(sig);
    } catch {
      return refuse('MalformedToken: The sig parameter is not validly encoded.');
    }
    const signed = sasStringToSign(sr, se);
    const valid = rule?.keys
      .values()
      .some(({ value }) => createHmac('sha256', value).update(signed, 'utf8').digest('base64') === signature);
    if (!rule || !valid) return refuse('InvalidSignature: The token has an invalid signature.');
    if (!rule.rights.includes('Manage'))
      return refuse('Manage,EntityRead claims required for this operation.');

    const base = `https://${ns.name}${SERVICE_BUS_HOST_SUFFIX}`;
    const updated = new Date().toISOString();
    const entry = (type: 'queues' | 'topics', name: string) =>
      `<entry><id>${base}/${escapeXml(name)}?api-version=2021-05</id><title type="text">${escapeXml(name)}</title><updated>${updated}</updated><link rel="self" href="${base}/${escapeXml(name)}?api-version=2021-05"/><content type="application/xml"><${type === 'queues' ? 'QueueDescription' : 'TopicDescription'} xmlns="http://schemas.microsoft.com/netservices/2010/10/servicebus/connect" xmlns:i="http://www.w3.org/2001/XMLSchema-instance"><Status>Active</Status></${type === 'queues' ? 'QueueDescription' : 'TopicDescription'}></content></entry>`;
    const feed = (title: string, entries: string[]) =>
      `<feed xmlns="http://www.w3.org/2005/Atom"><title type="text">${title}</title><id>${base}${escapeXml(path)}?api-version=2021-05</id><updated>${updated}</updated>${entries.join('')}</feed>`;
    const headers = { 'content-type': 'application/atom+xml;type=feed;charset=utf-8' };
    if (listing) {
      const top = Number(req.url.searchParams.get('$top') ?? '100');
      const skip = Number(req.url.searchParams.get('$skip') ?? '0');
      const names = (listing === 'queues' ? ns.queues : ns.topics).slice(skip, skip + top);
      return {
        status: 200,
        headers,
        body: feed(
          listing === 'queues' ? 'Queues' : 'Topics',
          names.map((n) => entry(listing, n)),
        ),
      };
    }
    if (entity) {
      return {
        status: 200,
        headers: { 'content-type': 'application/atom+xml;type=entry;charset=utf-8' },
        body: `<?xml version="1.0" encoding="utf-8"?>${entry(entity.type, entity.name).replace('<entry>', '<entry xmlns="http://www.w3.org/2005/Atom">')}`,
      };
    }
    // A name that is no entity: Service Bus answers an empty feed, not 404.
    return { status: 200, headers, body: feed('Publicly Listed Services', []) };
  }
}

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

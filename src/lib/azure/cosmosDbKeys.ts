import { createHmac } from 'node:crypto';
import { CosmosDBManagementClient } from '@azure/arm-cosmosdb';
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
  parseArmId,
  providedKey,
} from './armKeys';

const NAMESPACE = 'Microsoft.DocumentDB';
const SHAPES = [['databaseaccounts']];

/** Which pair of a Cosmos DB account's keys: the read-write master keys or the read-only keys. */
export type CosmosKeyPair = 'readWrite' | 'readOnly';

const NAMES: Record<CosmosKeyPair, Record<KeySlot, { listed: string; keyKind: string }>> = {
  readWrite: {
    primary: { listed: 'primaryMasterKey', keyKind: 'primary' },
    secondary: { listed: 'secondaryMasterKey', keyKind: 'secondary' },
  },
  readOnly: {
    primary: { listed: 'primaryReadonlyMasterKey', keyKind: 'primaryReadonly' },
    secondary: { listed: 'secondaryReadonlyMasterKey', keyKind: 'secondaryReadonly' },
  },
};

/** The string a Cosmos DB master-key signature covers (Cosmos DB REST, "Access control on Cosmos DB resources"). */
function payload(verb: string, resourceType: string, resourceLink: string, date: string): string {
  return `${verb.toLowerCase()}\n${resourceType.toLowerCase()}\n${resourceLink}\n${date.toLowerCase()}\n\n`;
}

/**
 * `KeyProvider` for a Cosmos DB account's keys over `@azure/arm-cosmosdb`: the read-write pair
 * (`primaryMasterKey` / `secondaryMasterKey`) or, with `pair: 'readOnly'`, the read-only pair.
 * Keys are tested with a master-key-signed read of the database account
 * (`GET https://{account}.documents.azure.com/`), signed here (HMAC-SHA256 over
 * `verb\nresourceType\nresourceLink\nx-ms-date\n\n`) rather than through `@azure/cosmos`, which
 * would add a dependency for one request.
 */
export class CosmosDbKeys implements KeyProvider {
  readonly kind;
  private readonly clients: ClientsBySubscription<CosmosDBManagementClient>;
  private readonly probe: DataPlaneProbe;

  constructor(
    credential: TokenCredential,
    private readonly options: ArmAdapterOptions & {
      pair?: CosmosKeyPair;
      /** DNS suffix of the data plane (`documents.azure.com`; sovereign clouds differ). */
      dnsSuffix?: string;
    } = {},
  ) {
    this.kind = options.pair === 'readOnly' ? ('cosmosDbReadOnly' as const) : ('cosmosDb' as const);
    this.clients = new ClientsBySubscription(
      (sub) => new CosmosDBManagementClient(credential, sub, armClientOptions(options)),
    );
    this.probe = new DataPlaneProbe(this.kind, options);
  }

  private get pair(): CosmosKeyPair {
    return this.kind === 'cosmosDbReadOnly' ? 'readOnly' : 'readWrite';
  }

  private endpoint(account: string): string {
    return `https://${account}.${this.options.dnsSuffix ?? 'documents.azure.com'}`;
  }

  /**
   * Both keys of the pair. Needs `Microsoft.DocumentDB/databaseAccounts/listKeys/action` (read-write
   * pair) or `Microsoft.DocumentDB/databaseAccounts/readonlykeys/action` (read-only pair): the
   * read-only listing is enough for the read-only pair. One ARM call.
   */
  async listKeys(
    resourceId: string,
    options: KeyCallOptions & { withValues?: boolean } = {},
  ): Promise<KeyPair> {
    const id = parseArmId(resourceId, NAMESPACE, SHAPES);
    const account = id.names[0]!;
    let listed: Record<string, string | undefined>;
    try {
      const client = this.clients.get(id.subscriptionId);
      listed =
        this.pair === 'readOnly'
          ? {
              ...(await client.databaseAccounts.listReadOnlyKeys(id.resourceGroup, account, {
                abortSignal: options.abortSignal,
              })),
            }
          : {
              ...(await client.databaseAccounts.listKeys(id.resourceGroup, account, {
                abortSignal: options.abortSignal,
              })),
            };
    } catch (error) {
      throw keyError(error, `listing the keys of Cosmos DB account ${account}`, resourceId);
    }
    // The read-write listing carries the read-only pair too: every value seen is masked from now on.
    for (const value of Object.values(listed))
      if (typeof value === 'string' && value !== '') registerSecret(value);
    const names = NAMES[this.pair];
    const what = `Cosmos DB account ${account}`;
    return {
      kind: this.kind,
      resourceId,
      primary: providedKey(
        'primary',
        names.primary.listed,
        listed[names.primary.listed],
        options.withValues === true,
        what,
      ),
      secondary: providedKey(
        'secondary',
        names.secondary.listed,
        listed[names.secondary.listed],
        options.withValues === true,
        what,
      ),
    };
  }

  /**
   * Regenerates one key (`regenerateKey` with `keyKind` primary / secondary / primaryReadonly /
   * secondaryReadonly: a long-running operation, polled to its end) and reads the new value back.
   * Needs `Microsoft.DocumentDB/databaseAccounts/regenerateKey/action`, the listing permission of
   * `listKeys` (for the value), and `Microsoft.DocumentDB/locations/operationsStatus/read` to poll the
   * operation: its status resource lives under `/subscriptions/{id}/providers/Microsoft.DocumentDB/
   * locations/...`, outside the account, so that permission must be granted at the subscription.
   * ARM calls: the POST, its status polls and the SDK's final read of the operation, then one listing.
   */
  async regenerateKey(
    resourceId: string,
    slot: KeySlot,
    options: KeyCallOptions = {},
  ): Promise<ProvidedKey & { value: string }> {
    const id = parseArmId(resourceId, NAMESPACE, SHAPES);
    const account = id.names[0]!;
    const keyKind = NAMES[this.pair][slot].keyKind;
    try {
      await this.clients
        .get(id.subscriptionId)
        .databaseAccounts.regenerateKey(
          id.resourceGroup,
          account,
          { keyKind: keyKind as 'primary' },
          { abortSignal: options.abortSignal, updateIntervalInMs: this.options.pollIntervalMs ?? 2000 },
        );
    } catch (error) {
      throw keyError(error, `regenerating the ${keyKind} key of Cosmos DB account ${account}`, resourceId);
    }
    const pair = await this.listKeys(resourceId, { withValues: true, abortSignal: options.abortSignal });
    const key = pair[slot];
    return { ...key, value: key.value! };
  }

  /**
   * Reads the database account with the key (`GET /`, a metadata read that changes nothing). Needs
   * no Azure RBAC permission: the key is the credential. 200: accepted; 401: refused; anything else
   * throws (403 is the firewall or the clock, not the key).
   */
  async testKey(resourceId: string, value: string, options: KeyCallOptions = {}): Promise<KeyTestResult> {
    const id = parseArmId(resourceId, NAMESPACE, SHAPES);
    const account = id.names[0]!;
    registerSecret(value);
    const date = (this.options.authNow?.() ?? new Date()).toUTCString();
    const sig = createHmac('sha256', Buffer.from(value, 'base64'))
      .update(payload('GET', '', '', date), 'utf8')
      .digest('base64');
    let response: Awaited<ReturnType<DataPlaneProbe['get']>>;
    try {
      response = await this.probe.get(
        `${this.endpoint(account)}/`,
        {
          authorization: encodeURIComponent(`type=master&ver=1.0&sig=${sig}`),
          'x-ms-date': date,
          'x-ms-version': '2018-12-31',
          accept: 'application/json',
        },
        options.abortSignal,
      );
    } catch (error) {
      throw keyError(error, `testing a key of Cosmos DB account ${account}`, resourceId);
    }
    if (response.status === 200)
      return { accepted: true, status: 200, detail: this.probe.describe(response, 'database account read') };
    if (response.status === 401)
      return { accepted: false, status: 401, detail: this.probe.describe(response, '') };
    throw this.probe.inconclusive(response, `testing a key of Cosmos DB account ${account}`, resourceId);
  }

  /** `AccountEndpoint=https://{account}.documents.azure.com:443/;AccountKey={key};`, as the portal shows it. */
  connectionString(resourceId: string, value: string): string {
    const account = parseArmId(resourceId, NAMESPACE, SHAPES).names[0]!;
    return `AccountEndpoint=${this.endpoint(account)}:443/;AccountKey=${value};`;
  }
}

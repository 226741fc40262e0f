/**
 * The adapters rotation needs (key providers, consumer rollers), built from the platform and
 * loaded the first time a rotation step needs them: importing the app loads none of the ARM SDKs.
 */
import type { ArmAdapterOptions } from '../azure/armKeys';
import type { Platform } from '../azure/platform';
import type { WebhookCallbacks } from '../azure/webhookRoller';
import type { KeyRotationPolicy } from '../config/policy';
import type {
  Consumer,
  ConsumerKind,
  ConsumerRoller,
  RollContext,
  RollHandle,
  RollStatus,
} from '../ports/consumers';
import type {
  KeyCallOptions,
  KeyPair,
  KeyProvider,
  KeyProviderKind,
  KeySlot,
  KeyTestResult,
  ProvidedKey,
} from '../ports/keys';

/** A key provider whose adapter (and SDK) loads on its first call. */
class LazyKeyProvider implements KeyProvider {
  private instance: Promise<KeyProvider> | undefined;
  private loaded: KeyProvider | undefined;
  constructor(
    readonly kind: KeyProviderKind,
    private readonly build: () => Promise<KeyProvider>,
  ) {}
  private get(): Promise<KeyProvider> {
    this.instance ??= this.build().then(
      (provider) => {
        this.loaded = provider;
        return provider;
      },
      (error: unknown) => {
        this.instance = undefined;
        throw error;
      },
    );
    return this.instance;
  }
  async listKeys(resourceId: string, options?: KeyCallOptions & { withValues?: boolean }): Promise<KeyPair> {
    return (await this.get()).listKeys(resourceId, options);
  }
  async regenerateKey(
    resourceId: string,
    slot: KeySlot,
    options?: KeyCallOptions,
  ): Promise<ProvidedKey & { value: string }> {
    return (await this.get()).regenerateKey(resourceId, slot, options);
  }
  async testKey(resourceId: string, value: string, options?: KeyCallOptions): Promise<KeyTestResult> {
    return (await this.get()).testKey(resourceId, value, options);
  }
  /** Synchronous, as the port's: the adapter is loaded by the listing that gave the value. */
  connectionString(resourceId: string, value: string): string {
    if (!this.loaded)
      throw new Error(`the ${this.kind} key adapter is used before it was loaded (list the keys first)`);
    return this.loaded.connectionString(resourceId, value);
  }
}

/** A roller whose adapter (and SDK) loads on its first call. */
class LazyRoller implements ConsumerRoller {
  private instance: Promise<ConsumerRoller> | undefined;
  constructor(
    readonly kind: ConsumerKind,
    private readonly build: () => Promise<ConsumerRoller>,
  ) {}
  private get(): Promise<ConsumerRoller> {
    this.instance ??= this.build().catch((error: unknown) => {
      this.instance = undefined;
      throw error;
    });
    return this.instance;
  }
  async start(consumer: Consumer, context?: RollContext): Promise<RollHandle> {
    return (await this.get()).start(consumer, context);
  }
  async status(consumer: Consumer, handle: RollHandle, context?: RollContext): Promise<RollStatus> {
    return (await this.get()).status(consumer, handle, context);
  }
}

export interface RotationAdapters {
  keys(rotation: KeyRotationPolicy): KeyProvider;
  rollerFor(consumer: Consumer): ConsumerRoller;
}

/** What the adapters need besides the platform. */
export interface RotationAdapterOptions {
  /** Where callback webhooks' completions are recorded (the app's callback endpoint writes them). */
  callbacks?: WebhookCallbacks;
}

/** Key providers and rollers over the platform's credential and transport, each loaded on first use. */
export function rotationAdapters(platform: Platform, options: RotationAdapterOptions = {}): RotationAdapters {
  const arm: ArmAdapterOptions = {
    ...(platform.httpClient ? { httpClient: platform.httpClient } : {}),
    // The SDK's poller ignores `Retry-After: 0`; the sandbox answers at once.
    ...(platform.kind === 'sandbox' ? { pollIntervalMs: 0 } : {}),
  };
  const lazyKeys = (kind: KeyProviderKind, build: () => Promise<KeyProvider>) =>
    new LazyKeyProvider(kind, build);
  const providers: Record<KeyProviderKind, KeyProvider> = {
    cosmosDb: lazyKeys(
      'cosmosDb',
      async () => new (await import('../azure/cosmosDbKeys.js')).CosmosDbKeys(platform.credential, arm),
    ),
    cosmosDbReadOnly: lazyKeys(
      'cosmosDbReadOnly',
      async () =>
        new (await import('../azure/cosmosDbKeys.js')).CosmosDbKeys(platform.credential, {
          ...arm,
          pair: 'readOnly',
        }),
    ),
    storage: lazyKeys(
      'storage',
      async () => new (await import('../azure/storageKeys.js')).StorageAccountKeys(platform.credential, arm),
    ),
    serviceBus: lazyKeys(
      'serviceBus',
      async () => new (await import('../azure/serviceBusKeys.js')).ServiceBusKeys(platform.credential, arm),
    ),
  };
  const rollerOptions = { ...arm, clock: platform.clock, healthClient: platform.webhookClient };
  const rollers: Record<ConsumerKind, ConsumerRoller> = {
    aksDeployment: new LazyRoller(
      'aksDeployment',
      async () =>
        new (await import('../azure/aksRoller.js')).AksDeploymentRoller(platform.credential, rollerOptions),
    ),
    containerApp: new LazyRoller(
      'containerApp',
      async () =>
        new (await import('../azure/containerAppRoller.js')).ContainerAppRoller(
          platform.credential,
          rollerOptions,
        ),
    ),
    webApp: new LazyRoller(
      'webApp',
      async () =>
        new (await import('../azure/webAppRoller.js')).WebAppRoller(platform.credential, rollerOptions),
    ),
    webhook: new LazyRoller(
      'webhook',
      async () =>
        new (await import('../azure/webhookRoller.js')).WebhookRoller({
          httpClient: platform.webhookClient,
          clock: platform.clock,
          ...(options.callbacks ? { callbacks: options.callbacks } : {}),
        }),
    ),
    reload: new LazyRoller(
      'reload',
      async () =>
        new (await import('../azure/reloadRoller.js')).ReloadRoller({
          clock: platform.clock,
          healthClient: platform.webhookClient,
        }),
    ),
  };
  return {
    keys(rotation) {
      switch (rotation.provider) {
        case 'cosmosDbKeys':
          return rotation.keyPair === 'readOnly' ? providers.cosmosDbReadOnly : providers.cosmosDb;
        case 'storageAccountKeys':
          return providers.storage;
        case 'serviceBusSasKeys':
          return providers.serviceBus;
      }
    },
    rollerFor: (consumer) => rollers[consumer.target.kind],
  };
}

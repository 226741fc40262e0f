/**
 * Consumers of a rotated credential, as a port: something that must be made to read the new Key Vault
 * version (restarted, rolled, told by a webhook, or left to reload by itself) before the old key may
 * be revoked. A roll is started once and then observed: `start` returns a serializable handle that a
 * run stores in its step, and `status` (safe to call any number of times) says whether the roll is
 * done, still running, or failed and why. Adapters live in `src/lib/azure/*Roller*.ts`.
 */

export type ConsumerKind = 'aksDeployment' | 'containerApp' | 'webApp' | 'webhook' | 'reload';

/** Where and how a consumer is rolled. Every name here is checked before it is used in a call. */
export type ConsumerTarget =
  | {
      kind: 'aksDeployment';
      /** ARM id of the managed cluster. */
      clusterId: string;
      namespace: string;
      deployment: string;
      /** `kubectl rollout status --timeout` (default 600 s): a rollout not done by then fails the roll. */
      timeoutSeconds?: number;
    }
  | {
      kind: 'containerApp' /** ARM id of the container app (its active revision is restarted). */;
      appId: string;
    }
  | {
      kind: 'webApp';
      /** ARM id of the App Service / Functions app (`Microsoft.Web/sites`). */
      siteId: string;
      /**
       * A restart reports no progress: the roll counts as running for this long (default 60 s) and
       * is then done, or healthy when `healthUrl` says so.
       */
      settleSeconds?: number;
    }
  | {
      kind: 'webhook';
      /** POSTed to start the roll (a pipeline, a deployment tool). */
      url: string;
      /**
       * `polling`: the answer is 202 with a `Location` to GET for `{ status }`. `callback`: the target
       * calls `RollContext.callbackUrl` when done; the adapter asks its `callbacks` store.
       */
      completion: 'polling' | 'callback';
    }
  | {
      kind: 'reload';
      /** How long the consumer takes to pick a new version up itself (CSI rotation poll, App Service Key Vault references). */
      waitSeconds: number;
    };

export interface Consumer {
  /** The consumer's name in the policy; safe to log. */
  name: string;
  target: ConsumerTarget;
  /**
   * Optional health check, GET after the roll: 2xx is healthy. When its JSON body lists
   * `secretVersions` (the Key Vault versions the consumer's instances hold) and the context names the
   * version just published, healthy also means running on that version only.
   */
  healthUrl?: string;
}

export interface RollContext {
  /** The Key Vault version the consumer must run on once rolled (checked against the health answer). */
  secretVersion?: string;
  /** Which secret changed (names only), for a webhook's body and for logs. */
  secret?: { vaultUrl: string; name: string };
  /** Where a `callback` webhook reports completion (the app's endpoint for this roll). */
  callbackUrl?: string;
  abortSignal?: AbortSignal;
}

/** A started roll, as a run stores it: JSON-safe, no secret. */
export interface RollHandle {
  kind: ConsumerKind;
  consumer: string;
  /** When the roll was started, by the platform's clock (ISO 8601). */
  startedAt: string;
  /** Kind-specific references: the AKS command id, the restarted revision, the webhook's status URL... */
  ref: Record<string, string>;
}

export type RollStatus =
  | { state: 'running'; detail: string }
  | { state: 'done'; detail: string }
  | { state: 'failed'; reason: string };

/** Rolls one kind of consumer. */
export interface ConsumerRoller {
  readonly kind: ConsumerKind;
  /** Starts a roll. Not idempotent (a second call restarts again): callers record the handle first-time. */
  start(consumer: Consumer, context?: RollContext): Promise<RollHandle>;
  /** Where the roll stands; reads only, safe to repeat. */
  status(consumer: Consumer, handle: RollHandle, context?: RollContext): Promise<RollStatus>;
}

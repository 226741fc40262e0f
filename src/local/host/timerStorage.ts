/**
 * The host storage a timer listener keeps its state in, as the Functions runtime does in the
 * `AzureWebJobsStorage` account, container `azure-webjobs-hosts`:
 *
 * - the schedule monitor's status (WebJobs extensions `StorageScheduleMonitorV2`): the blob
 *   `timers/<hostId>/<timerName>/status`, JSON `{ "Last", "Next", "LastUpdated" }`;
 * - the listener's singleton lock (WebJobs `SingletonListener` over `BlobLeaseDistributedLockManager`):
 *   a blob lease on `locks/<hostId>/<timerName>.Listener`, created empty when missing. Only the host
 *   holding the lease runs the timer; the others try again every `listenerLockRecoveryPollingInterval`.
 *
 * `<timerName>` is the runtime's `<declaring type>.<method>`, which for a function of the script host
 * is `Host.Functions.<function name>`. `<hostId>` is the setting `AzureFunctionsWebHost__hostid` when
 * set, otherwise (as the runtime does outside App Service) the machine name and a hash of the app
 * directory: hosts of one app on one machine, or sharing that setting, share their timers' state.
 */
import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import {
  type BlobLeaseClient,
  BlobServiceClient,
  type BlockBlobClient,
  type ContainerClient,
} from '@azure/storage-blob';

/** The runtime's container for host state, and its `DateTime.MinValue`. */
export const HOSTS_CONTAINER = 'azure-webjobs-hosts';
const HOST_ID_SETTING = 'AzureFunctionsWebHost__hostid';
const HOST_ID = /^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$/;
/** Values before year 2 are the runtime's unset `DateTime` (`ScheduleMonitor.DefaultDateTimeThreshold`). */
const UNSET_BEFORE = Date.UTC(2, 0, 1);

/** A timer's schedule status; an absent date is the runtime's unset value (`DateTime.MinValue`). */
export interface ScheduleStatus {
  last?: Date;
  next?: Date;
  lastUpdated?: Date;
}

/** A held listener lock: renewed by its holder, released on stop. */
export interface TimerLock {
  readonly lockId: string;
  /** Renews the lease; rejects with `LockLostError` when another host holds it now. */
  renew(): Promise<void>;
  release(): Promise<void>;
}

/** The timer state of one host id in one storage account. */
export interface TimerStore {
  readonly hostId: string;
  getStatus(timerName: string): Promise<ScheduleStatus | undefined>;
  updateStatus(timerName: string, status: ScheduleStatus): Promise<void>;
  /** Takes the lease of `lockId` for `periodMs` (15 to 60 s); undefined when another host holds it. */
  tryLock(lockId: string, periodMs: number): Promise<TimerLock | undefined>;
}

/** The lease of a lock is no longer ours (expired and taken, or broken). */
export class LockLostError extends Error {
  constructor(lockId: string, cause: unknown) {
    super(`the singleton lock '${lockId}' was lost`, { cause });
    this.name = 'LockLostError';
  }
}

/** The timer name the runtime keys a function's schedule status and listener lock by. */
export function timerNameOf(functionName: string): string {
  return `Host.Functions.${functionName}`;
}

/**
 * The host id: `AzureFunctionsWebHost__hostid` when set (lowercase letters, digits and dashes, at
 * most 32), otherwise `<machine name>-<hash of the app directory>`, lowercased and cut to 32 as the
 * runtime's default outside App Service.
 */
export function localHostId(env: Record<string, string | undefined>, rootDir: string): string {
  const configured = env[HOST_ID_SETTING]?.trim();
  if (configured) {
    if (!HOST_ID.test(configured)) {
      throw new Error(
        `${HOST_ID_SETTING} must be 1 to 32 lowercase letters, digits or dashes, not starting or ending with a dash.`,
      );
    }
    return configured;
  }
  const machine =
    hostname()
      .replace(/[^A-Za-z0-9]/g, '')
      .toLowerCase() || 'localhost';
  const hash = createHash('sha256').update(rootDir).digest('hex').slice(0, 10);
  return `${machine.slice(0, 32 - hash.length - 1)}-${hash}`;
}

function statusCode(error: unknown): number | undefined {
  return (error as { statusCode?: number }).statusCode;
}

function parseDate(value: unknown): Date | undefined {
  if (typeof value !== 'string') return undefined;
  // A value without an offset is UTC (the runtime in Azure runs in UTC).
  const text = /(?:Z|[+-]\d\d:\d\d)$/.test(value) ? value : `${value}Z`;
  const time = Date.parse(text);
  return Number.isFinite(time) && time >= UNSET_BEFORE ? new Date(time) : undefined;
}

const MIN_VALUE = '0001-01-01T00:00:00';

function formatDate(date: Date | undefined): string {
  return date ? date.toISOString() : MIN_VALUE;
}

/** A status as the runtime stores it (Newtonsoft, ISO dates). */
export function serializeStatus(status: ScheduleStatus): string {
  return JSON.stringify({
    Last: formatDate(status.last),
    Next: formatDate(status.next),
    LastUpdated: formatDate(status.lastUpdated),
  });
}

/** Reads a stored status; unset or unreadable dates come back absent (`GetSafeStatusAsync`). */
export function parseStatus(text: string): ScheduleStatus {
  const json = JSON.parse(text) as Record<string, unknown>;
  return { last: parseDate(json.Last), next: parseDate(json.Next), lastUpdated: parseDate(json.LastUpdated) };
}

class BlobTimerStore implements TimerStore {
  readonly #container: ContainerClient;

  constructor(
    service: BlobServiceClient,
    readonly hostId: string,
  ) {
    this.#container = service.getContainerClient(HOSTS_CONTAINER);
  }

  #blob(path: string): BlockBlobClient {
    return this.#container.getBlockBlobClient(path);
  }

  async getStatus(timerName: string): Promise<ScheduleStatus | undefined> {
    try {
      const bytes = await this.#blob(`timers/${this.hostId}/${timerName}/status`).downloadToBuffer();
      return parseStatus(bytes.toString('utf8'));
    } catch (error) {
      if (statusCode(error) === 404) return undefined;
      throw error;
    }
  }

  async updateStatus(timerName: string, status: ScheduleStatus): Promise<void> {
    const text = serializeStatus(status);
    const blob = this.#blob(`timers/${this.hostId}/${timerName}/status`);
    await this.#withContainer(() => blob.upload(text, Buffer.byteLength(text)));
  }

  async tryLock(lockId: string, periodMs: number): Promise<TimerLock | undefined> {
    const blob = this.#blob(`locks/${this.hostId}/${lockId}`);
    const lease = blob.getBlobLeaseClient();
    const seconds = Math.round(periodMs / 1000);
    try {
      await lease.acquireLease(seconds);
    } catch (error) {
      if (statusCode(error) === 409) return undefined;
      if (statusCode(error) !== 404) throw error;
      // The lock blob does not exist yet: create it empty (never over another host's), then lease it.
      await this.#withContainer(() =>
        blob.upload('', 0, { conditions: { ifNoneMatch: '*' } }).catch((created: unknown) => {
          if (statusCode(created) !== 409 && statusCode(created) !== 412) throw created;
        }),
      );
      try {
        await lease.acquireLease(seconds);
      } catch (again) {
        if (statusCode(again) === 409) return undefined;
        throw again;
      }
    }
    return heldLock(lockId, lease);
  }

  /** Runs `write`; when the host container is missing, creates it and runs `write` again. */
  async #withContainer<T>(write: () => Promise<T>): Promise<T> {
    try {
      return await write();
    } catch (error) {
      if (statusCode(error) !== 404) throw error;
      await this.#container.createIfNotExists();
      return write();
    }
  }
}

function heldLock(lockId: string, lease: BlobLeaseClient): TimerLock {
  return {
    lockId,
    async renew() {
      try {
        await lease.renewLease();
      } catch (error) {
        const code = statusCode(error);
        // Another lease on the blob, or the blob gone: the lock is someone else's now.
        if (code === 409 || code === 412 || code === 404) throw new LockLostError(lockId, error);
        throw error;
      }
    },
    async release() {
      try {
        await lease.releaseLease();
      } catch (error) {
        // Expired and taken by another host, or gone: nothing of ours to release.
        const code = statusCode(error);
        if (code !== 404 && code !== 409 && code !== 412) throw error;
      }
    },
  };
}

/**
 * The timer store of `AzureWebJobsStorage`. Throws when it is not set, as Core Tools refuses to start
 * ("Missing value for AzureWebJobsStorage ... required for all triggers other than httptrigger, ...");
 * an identity-based one (`AzureWebJobsStorage__accountName`...), which the local host does not
 * serve, gives the reason instead: the timers then run without schedule monitor or singleton lock.
 */
export function createTimerStore(
  env: Record<string, string | undefined>,
  rootDir: string,
): { store: TimerStore } | { reason: string } {
  const connection = env.AzureWebJobsStorage?.trim();
  if (!connection) {
    if (Object.keys(env).some((k) => k.startsWith('AzureWebJobsStorage__') && env[k])) {
      return { reason: 'AzureWebJobsStorage is identity-based, which the local host does not serve' };
    }
    throw new Error(
      'Timer functions need AzureWebJobsStorage (a storage connection string, or UseDevelopmentStorage=true): the runtime keeps their schedule status and singleton lock there.',
    );
  }
  let service: BlobServiceClient;
  try {
    // No keep-alive: a lease renewal every half minute needs no pooled socket left open after stop.
    service = BlobServiceClient.fromConnectionString(connection, { keepAliveOptions: { enable: false } });
  } catch {
    throw new Error(
      'AzureWebJobsStorage is not a valid storage connection string (the timers keep their state there).',
    );
  }
  return { store: new BlobTimerStore(service, localHostId(env, rootDir)) };
}

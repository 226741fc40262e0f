import { describe, expect, it } from 'vitest';
import {
  ConfigurationError,
  ConflictError,
  DependencyError,
  NotFoundError,
  TransientError,
} from '../../../src/lib/core/errors';
import { createStateStores } from '../../../src/lib/state';
import { fitJson } from '../../../src/lib/state/limits';
import {
  createQueueClient,
  createTableClient,
  isInsecureConnectionString,
  mapStorageError,
  stateNames,
} from '../../../src/lib/state/tables';
import { StorageWorkQueue } from '../../../src/lib/state/workQueue';
import { storageConnectionString, uniquePrefix } from '../../support/storage';
import { freshStores, TestClock } from './helpers';

describe('state names', () => {
  it('derives table and queue names from the prefix', () => {
    expect(stateNames()).toEqual({
      runs: 'stampkeeperRuns',
      audit: 'stampkeeperAudit',
      idempotency: 'stampkeeperIdempotency',
      leases: 'stampkeeperLeases',
      rejections: 'stampkeeperRejections',
      deadLetters: 'stampkeeperDeadLetters',
      deadLetterRevisions: 'stampkeeperDeadLetterRevisions',
      reports: 'stampkeeperReports',
      workQueue: 'stampkeeper-work',
      poisonQueue: 'stampkeeper-work-poison',
    });
  });

  it('rejects a prefix or queue name Storage would refuse, naming the rule', () => {
    expect(() => stateNames('1bad')).toThrow(ConfigurationError);
    expect(() => stateNames('stamp-keeper')).toThrow(/letters and digits/);
    expect(() => stateNames('ok', 'Work_Queue')).toThrow(/lowercase/);
  });
});

describe('mapStorageError', () => {
  const sdk = (statusCode: number | undefined, errorCode?: string, code?: string) =>
    Object.assign(new Error('sdk failure AccountKey=abc123secret'), {
      statusCode,
      details: { errorCode },
      code,
    });

  it('maps by status and code', () => {
    expect(mapStorageError('op', sdk(412, 'UpdateConditionNotSatisfied'))).toBeInstanceOf(ConflictError);
    expect(mapStorageError('op', sdk(409, 'EntityAlreadyExists'))).toBeInstanceOf(ConflictError);
    expect(mapStorageError('op', sdk(404, 'ResourceNotFound'))).toBeInstanceOf(NotFoundError);
    expect(mapStorageError('op', sdk(429))).toBeInstanceOf(TransientError);
    expect(mapStorageError('op', sdk(503, 'ServerBusy'))).toBeInstanceOf(TransientError);
    expect(mapStorageError('op', sdk(undefined, undefined, 'ECONNREFUSED'))).toBeInstanceOf(TransientError);
    const forbidden = mapStorageError('op', sdk(403, 'AuthorizationPermissionMismatch'));
    expect(forbidden).toBeInstanceOf(DependencyError);
    expect(forbidden.retryable).toBe(false);
  });

  it('names the operation and Storage code but never the SDK message', () => {
    const mapped = mapStorageError('run update', sdk(412, 'UpdateConditionNotSatisfied'));
    expect(mapped.message).toBe('run update failed (412 UpdateConditionNotSatisfied)');
    expect(mapped.message).not.toContain('abc123secret');
  });
});

describe('connection strings', () => {
  it('understands the development shortcut and http endpoints', () => {
    const table = createTableClient('UseDevelopmentStorage=true', 'xRuns');
    const queue = createQueueClient('UseDevelopmentStorage=true', 'x-work');
    expect(table.url).toBe('http://127.0.0.1:10002/devstoreaccount1');
    expect(queue.url).toBe('http://127.0.0.1:10001/devstoreaccount1/x-work');
    expect(isInsecureConnectionString(storageConnectionString())).toBe(true);
    expect(
      isInsecureConnectionString(
        'DefaultEndpointsProtocol=https;AccountName=a;AccountKey=a2V5;EndpointSuffix=core.windows.net',
      ),
    ).toBe(false);
  });
  it('builds token-credential clients for identity-based access', () => {
    const credential = { getToken: async () => ({ token: 'unused', expiresOnTimestamp: 0 }) };
    const access = {
      tableServiceUrl: 'https://acct.table.core.windows.net',
      queueServiceUrl: 'https://acct.queue.core.windows.net',
      credential,
    };
    expect(createTableClient(access, 'xRuns').url).toBe('https://acct.table.core.windows.net');
    expect(createQueueClient(access, 'x-work').url).toBe('https://acct.queue.core.windows.net/x-work');
  });
});

describe('ensure and ping', () => {
  it('creates tables and queues idempotently; ping fails before and succeeds after', async () => {
    // Prepare
    const prefix = uniquePrefix('p');
    const stores = createStateStores({
      connectionString: storageConnectionString(),
      tablePrefix: prefix,
      workQueueName: `${prefix}-work`,
    });

    // Act
    const before = await stores.ping().catch((error: unknown) => error);
    await stores.ensure();
    await stores.ensure();
    const poison = createQueueClient(storageConnectionString(), `${prefix}-work-poison`);

    // Assess
    expect(before).toBeInstanceOf(NotFoundError);
    await expect(stores.ping()).resolves.toBeUndefined();
    expect(await poison.exists()).toBe(true);
  });

  it('reports unreachable storage as transient', async () => {
    // Prepare
    const stores = createStateStores({
      connectionString:
        'DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;TableEndpoint=http://127.0.0.1:1/devstoreaccount1;QueueEndpoint=http://127.0.0.1:1/devstoreaccount1',
    });

    // Act
    const ping = stores.ping();

    // Assess
    await expect(ping).rejects.toBeInstanceOf(TransientError);
  });
});

describe('StorageWorkQueue', () => {
  it('sends base64 JSON (as the Functions queue trigger expects) and reads plain JSON too', async () => {
    // Prepare
    const { workQueue, names } = await freshStores(new TestClock());
    const raw = createQueueClient(storageConnectionString(), names.workQueue);
    const plain = new StorageWorkQueue(raw, 'none');

    // Act
    await workQueue.send({ runId: 'r1', ticket: 1 });
    const peeked = await raw.peekMessages();
    await plain.send({ runId: 'r2', step: 'b' });
    await raw.sendMessage('garbage');
    const received = await workQueue.receive({ maxMessages: 10 });

    // Assess
    expect(
      JSON.parse(Buffer.from(peeked.peekedMessageItems[0]!.messageText, 'base64').toString('utf8')),
    ).toEqual({
      runId: 'r1',
      ticket: 1,
    });
    expect(received.map((r) => r.message)).toEqual([
      { runId: 'r1', ticket: 1 },
      { runId: 'r2', step: 'b' },
      undefined,
    ]);
  });
});

describe('fitJson', () => {
  it('keeps small JSON as is', () => {
    expect(fitJson({ a: 1 }, 100)).toBe('{"a":1}');
  });

  it('replaces oversized JSON by a parseable marker within the limit, even when escaping grows it', () => {
    const value = { text: '"\\'.repeat(5000) };
    const out = fitJson(value, 1000);
    expect(out.length).toBeLessThanOrEqual(1000);
    expect(JSON.parse(out)).toMatchObject({ _truncated: true, originalLength: JSON.stringify(value).length });
  });
});

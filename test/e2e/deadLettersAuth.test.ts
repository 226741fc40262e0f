/**
 * Who may do what with dead letters, on the bundle and the local host with built-in authentication
 * as in Azure (no default caller): Operations.Read looks, Operations.Execute acts, nobody else
 * does either, and a refused action changes nothing (record, revisions, broker, audit).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROLES } from '../../src/lib/app/auth';
import type { RunningLocalApp } from '../../src/local/app';
import type { HostLogger } from '../../src/local/host/types';
import { startBundledApp } from './support/localApp';

const logs: string[] = [];
const logger: HostLogger = {
  info: (m) => logs.push(m),
  warn: (m) => logs.push(m),
  error: (m) => logs.push(m),
};
const CALLER_APP = '5c0ffee0-0000-4000-8000-000000000002';

let app: RunningLocalApp;
beforeAll(async () => {
  app = await startBundledApp({ prefix: 'dla', logger, auth: { defaultCaller: false } });
}, 120_000);
afterAll(async () => {
  await app?.stop();
});

async function json(
  path: string,
  init: RequestInit = {},
  // biome-ignore lint/suspicious/noExplicitAny: JSON answers are read freely in assertions
): Promise<{ status: number; body: any }> {
  const response = await fetch(`${app.url}${path}`, init);
  const text = await response.text();
  // Built-in authentication answers a refused caller in plain text, as in Azure.
  const isJson = response.headers.get('content-type')?.includes('json');
  return { status: response.status, body: text && isJson ? JSON.parse(text) : text };
}

async function token(roles: string[]): Promise<Record<string, string>> {
  const answer = await json('/admin/token', {
    method: 'POST',
    body: JSON.stringify({ app: CALLER_APP, roles }),
  });
  return { authorization: `Bearer ${answer.body.token}` };
}

describe('dead-letter endpoints and app roles', { timeout: 120_000 }, () => {
  it('Operations.Read lists and views, Operations.Execute acts; anything else is refused and changes nothing', async () => {
    // Prepare: start-up archived the default scenario's invalid order (order-1002)
    const reader = await token([ROLES.read]);
    const executor = await token([ROLES.execute]);
    const listed = await json('/api/deadletters?entity=orders&reason=ValidationFailed', { headers: reader });
    expect(listed.status).toBe(200);
    const id = listed.body.records[0].id as string;
    const before = await json(`/api/deadletters/${id}`, { headers: reader });
    const auditBefore = await json(
      `/api/audit?target=${encodeURIComponent(`deadletters/orders/${id}`)}&limit=1000`,
      { headers: reader },
    );
    const ordersBefore = app.serviceBus!.broker.entities.get('orders').counts();
    const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
      json(path, { method: 'POST', headers, body: JSON.stringify(body) });

    // Act
    const answers = {
      anonymousList: (await json('/api/deadletters?entity=orders')).status,
      anonymousReplay: (await post(`/api/deadletters/${id}/replay`, {})).status,
      readerReplay: (await post(`/api/deadletters/${id}/replay`, {}, reader)).status,
      readerEdit: (await post(`/api/deadletters/${id}/revisions`, { body: '{}', reason: 'fix' }, reader))
        .status,
      readerDiscard: (await post(`/api/deadletters/${id}/discard`, { reason: 'noise' }, reader)).status,
      readerBulk: (await post('/api/deadletters/replay', { filter: { entity: 'orders' } }, reader)).status,
      readerPurge: (
        await post('/api/deadletters/purge', { filter: { entity: 'orders' }, confirm: 2 }, reader)
      ).status,
      executorList: (await json('/api/deadletters?entity=orders', { headers: executor })).status,
      executorView: (await json(`/api/deadletters/${id}`, { headers: executor })).status,
    };
    const after = await json(`/api/deadletters/${id}`, { headers: reader });
    const auditAfter = await json(
      `/api/audit?target=${encodeURIComponent(`deadletters/orders/${id}`)}&limit=1000`,
      { headers: reader },
    );

    // Assess
    expect(answers).toEqual({
      anonymousList: 401,
      anonymousReplay: 401,
      readerReplay: 403,
      readerEdit: 403,
      readerDiscard: 403,
      readerBulk: 403,
      readerPurge: 403,
      executorList: 403,
      executorView: 403,
    });
    expect(after.status).toBe(200);
    expect(after.body).toEqual(before.body);
    expect(app.serviceBus!.broker.entities.get('orders').counts()).toEqual(ordersBefore);
    expect(auditAfter.status).toBe(200);
    expect(auditAfter.body.records).toEqual(auditBefore.body.records);

    // Act: the executor may act (an edit: a new revision, the original kept)
    const edited = await post(
      `/api/deadletters/${id}/revisions`,
      { body: '{"fixed":true}', reason: 'fix' },
      executor,
    );

    // Assess
    expect(edited.status).toBe(201);
    const afterEdit = await json(`/api/deadletters/${id}`, { headers: reader });
    expect(afterEdit.body.revisionHistory.length).toBe(before.body.revisionHistory.length + 1);
    expect(afterEdit.body.revisionHistory[0]).toEqual(before.body.revisionHistory[0]);
  });
});

import { CosmosDBManagementClient } from '@azure/arm-cosmosdb';
import { describe, expect, it } from 'vitest';
import { ARM, armSandbox, failureOf, RG, raw, SUB } from './support';

const ACCOUNT_PATH = `/subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.DocumentDB/databaseAccounts/acct-one`;

function sandbox() {
  return armSandbox({ arm: { cosmosDbAccounts: [{ name: 'acct-one' }] } });
}

describe('sandbox Resource Manager front door', () => {
  it('answers a request without api-version 400 MissingApiVersionParameter, before looking at the token', async () => {
    // Prepare
    const box = sandbox();

    // Act
    const response = await raw(box, 'POST', `${ARM}${ACCOUNT_PATH}/listKeys`, { scope: null });

    // Assess
    expect(response.status).toBe(400);
    expect(response.json).toEqual({
      error: {
        code: 'MissingApiVersionParameter',
        message: 'The api-version query parameter (?api-version=) is required for all requests.',
      },
    });
  });

  it('refuses a missing token with ARM challenge, and a Key Vault token as the wrong audience', async () => {
    // Prepare
    const box = sandbox();
    const url = `${ARM}${ACCOUNT_PATH}/listKeys?api-version=2025-10-15`;

    // Act
    const anonymous = await raw(box, 'POST', url, { scope: null });
    const keyVaultToken = await raw(box, 'POST', url, { scope: 'https://vault.azure.net/.default' });
    const forged = await raw(box, 'POST', url, { authorization: 'Bearer not-a-sandbox-token' });
    const basic = await raw(box, 'POST', url, { authorization: 'Basic dXNlcjpwYXNz' });

    // Assess
    expect(anonymous.status).toBe(401);
    expect(anonymous.json).toEqual({
      error: {
        code: 'AuthenticationFailed',
        message: "Authentication failed. The 'Authorization' header is missing.",
      },
    });
    expect(anonymous.headers['www-authenticate']).toBe(
      `Bearer authorization_uri="https://login.windows.net/00000000-0000-0000-0000-000000000001", error="invalid_token", error_description="Authentication failed. The 'Authorization' header is missing."`,
    );
    expect(keyVaultToken.status).toBe(401);
    expect(keyVaultToken.json).toEqual({
      error: {
        code: 'InvalidAuthenticationTokenAudience',
        message:
          "The access token has been obtained for wrong audience or resource 'https://vault.azure.net'. It should exactly match with one of the allowed audiences 'https://management.core.windows.net/','https://management.core.windows.net','https://management.azure.com/','https://management.azure.com'.",
      },
    });
    expect(forged).toMatchObject({ status: 401, json: { error: { code: 'InvalidAuthenticationToken' } } });
    expect(basic).toMatchObject({
      status: 401,
      json: { error: { code: 'AuthenticationFailedInvalidHeader' } },
    });
  });

  it('words unknown subscription, resource group and resource as ARM does', async () => {
    // Prepare
    const box = sandbox();
    const v = '?api-version=2025-10-15';
    const otherSub = '11111111-1111-1111-1111-111111111111';

    // Act
    const sub = await raw(
      box,
      'GET',
      `${ARM}/subscriptions/${otherSub}/resourceGroups/${RG}/providers/Microsoft.DocumentDB/databaseAccounts/acct-one${v}`,
    );
    const group = await raw(
      box,
      'GET',
      `${ARM}/subscriptions/${SUB}/resourceGroups/rg-missing/providers/Microsoft.DocumentDB/databaseAccounts/acct-one${v}`,
    );
    const resource = await raw(
      box,
      'POST',
      `${ARM}/subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.DocumentDB/databaseAccounts/acct-missing/listKeys${v}`,
    );

    // Assess
    expect(sub).toMatchObject({
      status: 404,
      json: {
        error: {
          code: 'SubscriptionNotFound',
          message: `The subscription '${otherSub}' could not be found.`,
        },
      },
    });
    expect(group).toMatchObject({
      status: 404,
      json: {
        error: { code: 'ResourceGroupNotFound', message: "Resource group 'rg-missing' could not be found." },
      },
    });
    expect(resource).toMatchObject({
      status: 404,
      json: {
        error: {
          code: 'ResourceNotFound',
          message: `The Resource 'Microsoft.DocumentDB/databaseAccounts/acct-missing' under resource group '${RG}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix`,
        },
      },
    });
  });

  it('routes paths case-insensitively, as ARM does (resourcegroups, provider and names in any case)', async () => {
    // Prepare
    const box = sandbox();

    // Act
    const response = await raw(
      box,
      'GET',
      `${ARM}/SUBSCRIPTIONS/${SUB}/resourcegroups/${RG.toUpperCase()}/providers/microsoft.documentdb/DATABASEACCOUNTS/ACCT-ONE?api-version=2025-10-15`,
    );

    // Assess
    expect(response.status).toBe(200);
    expect(response.json).toMatchObject({
      name: 'acct-one',
      id: `/subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.DocumentDB/databaseAccounts/acct-one`,
    });
  });

  it('answers 501 for a namespace or an operation it does not emulate, and 400 for a body that is not JSON', async () => {
    // Prepare
    const box = sandbox();
    const v = '?api-version=2025-10-15';

    // Act
    const compute = await raw(
      box,
      'GET',
      `${ARM}/subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.Compute/virtualMachines/vm1${v}`,
    );
    const strings = await raw(box, 'POST', `${ARM}${ACCOUNT_PATH}/listConnectionStrings${v}`);
    const token = await box.credential.getToken('https://management.azure.com/.default');
    const { createHttpHeaders, createPipelineRequest } = await import('@azure/core-rest-pipeline');
    const badBody = await box.httpClient.sendRequest(
      createPipelineRequest({
        url: `${ARM}${ACCOUNT_PATH}/regenerateKey${v}`,
        method: 'POST',
        headers: createHttpHeaders({
          authorization: `Bearer ${token!.token}`,
          'content-type': 'application/json',
        }),
        body: '{"keyKind":',
      }),
    );

    // Assess
    expect(compute).toMatchObject({ status: 501, json: { error: { code: 'NotImplemented' } } });
    expect(strings).toMatchObject({ status: 501, json: { error: { code: 'NotImplemented' } } });
    expect(badBody.status).toBe(400);
    expect(JSON.parse(badBody.bodyAsText!)).toMatchObject({ error: { code: 'InvalidRequestContent' } });
  });

  it('surfaces ARM errors through the real SDK client as RestErrors with status and code', async () => {
    // Prepare
    const box = sandbox();
    const client = new CosmosDBManagementClient(box.credential, SUB, { httpClient: box.httpClient });

    // Act
    const error = await failureOf(client.databaseAccounts.listKeys(RG, 'acct-missing'));

    // Assess
    expect(error.statusCode).toBe(404);
    expect(error.code).toBe('ResourceNotFound');
  });

  it('records every request it answered, without bodies, in the request log', async () => {
    // Prepare
    const box = sandbox();
    const client = new CosmosDBManagementClient(box.credential, SUB, { httpClient: box.httpClient });

    // Act
    await client.databaseAccounts.listKeys(RG, 'acct-one');

    // Assess
    expect(box.requests()).toEqual([
      {
        service: 'arm',
        method: 'POST',
        host: 'management.azure.com',
        path: `${ACCOUNT_PATH}/listKeys`,
        status: 200,
        at: '2026-01-01T00:00:00.000Z',
      },
    ]);
  });
});

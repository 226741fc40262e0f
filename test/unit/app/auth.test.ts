import { describe, expect, it } from 'vitest';
import {
  ACTION_GROUP_APP_ID,
  authorize,
  parseClientPrincipal,
  ROLES,
  UnauthenticatedError,
} from '../../../src/lib/app/auth';
import { ForbiddenError } from '../../../src/lib/core/errors';

const ROLE_TYPE = 'http://schemas.microsoft.com/ws/2008/06/identity/claims/role';

function headers(values: Record<string, string>) {
  const lower = Object.fromEntries(Object.entries(values).map(([k, v]) => [k.toLowerCase(), v]));
  return { get: (name: string) => lower[name.toLowerCase()] ?? null };
}

function principal(
  claims: Array<[string, string]>,
  extra: Record<string, string> = {},
): ReturnType<typeof headers> {
  const body = {
    auth_typ: 'aad',
    claims: claims.map(([typ, val]) => ({ typ, val })),
    name_typ: 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name',
    role_typ: ROLE_TYPE,
  };
  return headers({ 'X-MS-CLIENT-PRINCIPAL': Buffer.from(JSON.stringify(body)).toString('base64'), ...extra });
}

describe('parseClientPrincipal', () => {
  it('reads a user: object id, name and app roles of the role claim type', () => {
    // Act
    const caller = parseClientPrincipal(
      principal(
        [
          [
            'http://schemas.microsoft.com/identity/claims/objectidentifier',
            '11111111-2222-3333-4444-555555555555',
          ],
          [ROLE_TYPE, 'Operations.Read'],
          [ROLE_TYPE, 'Operations.Execute'],
        ],
        { 'X-MS-CLIENT-PRINCIPAL-NAME': 'ops@contoso.com' },
      ),
    );

    // Assess
    expect(caller).toEqual({
      id: '11111111-2222-3333-4444-555555555555',
      name: 'ops@contoso.com',
      roles: ['Operations.Read', 'Operations.Execute'],
      actor: 'user:ops@contoso.com',
    });
  });

  it('reads a pipeline (service principal, client credentials) as an app actor', () => {
    // Act
    const caller = parseClientPrincipal(
      principal([
        ['oid', 'aaaaaaaa-0000-0000-0000-000000000001'],
        ['appid', 'bbbbbbbb-0000-0000-0000-000000000002'],
        ['roles', 'Operations.Execute'],
      ]),
    );

    // Assess
    expect(caller).toMatchObject({
      actor: 'app:bbbbbbbb-0000-0000-0000-000000000002',
      roles: ['Operations.Execute'],
    });
  });

  it("names Azure Monitor's action group service principal system:azure-monitor", () => {
    // Act
    const caller = parseClientPrincipal(
      principal([
        ['oid', 'dddddddd-0000-0000-0000-000000000004'],
        ['appid', ACTION_GROUP_APP_ID],
        ['roles', ROLES.alertDelivery],
      ]),
    );

    // Assess
    expect(caller).toMatchObject({ actor: 'system:azure-monitor', roles: ['ActionGroupsSecureWebhook'] });
  });

  it('answers undefined for an absent, oversized or malformed header', () => {
    expect(parseClientPrincipal(headers({}))).toBeUndefined();
    expect(parseClientPrincipal(headers({ 'x-ms-client-principal': 'not base64 json' }))).toBeUndefined();
    expect(parseClientPrincipal(headers({ 'x-ms-client-principal': 'A'.repeat(40_000) }))).toBeUndefined();
    expect(parseClientPrincipal(principal([['roles', 'Operations.Read']]))).toBeUndefined();
  });
});

describe('authorize', () => {
  const executor = principal([
    ['oid', 'cccccccc-0000-0000-0000-000000000003'],
    ['roles', 'Operations.Execute'],
  ]);

  it('gives the caller who holds the role', () => {
    expect(authorize({ headers: executor }, { authEnabled: true }, ROLES.execute).actor).toBe(
      'user:cccccccc-0000-0000-0000-000000000003',
    );
  });

  it('refuses a caller without the role (403), no caller (401), and everything when built-in auth is off', () => {
    expect(() => authorize({ headers: executor }, { authEnabled: true }, ROLES.approve)).toThrow(
      ForbiddenError,
    );
    expect(() => authorize({ headers: headers({}) }, { authEnabled: true }, ROLES.read)).toThrow(
      UnauthenticatedError,
    );
    // Without the platform's authentication, the header could be forged by the client.
    expect(() => authorize({ headers: executor }, { authEnabled: false }, ROLES.execute)).toThrow(
      /built-in authentication is not enabled/,
    );
  });
});

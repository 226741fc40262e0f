import { describe, expect, it } from 'vitest';
import { parseClientPrincipal } from '../../../src/lib/app/auth';
import { BuiltInAuth, identityProblems, principalHeaders } from '../../../src/local/host/builtInAuth';

const PIPELINE = '0f5e2c1a-6b7d-4e8f-9a0b-1c2d3e4f5a6b';
const EXCLUDED = ['/api/health', '/runtime/webhooks/eventgrid'];

function headerReader(headers: Record<string, string | string[] | undefined>) {
  return {
    get: (name: string) => {
      const value = headers[name.toLowerCase()];
      return value === undefined ? null : Array.isArray(value) ? value.join(', ') : value;
    },
  };
}

describe('BuiltInAuth (the local host emulation of Easy Auth)', () => {
  it("injects a principal the app's parser reads back: user and app callers, their roles and actors", () => {
    // Prepare
    const auth = new BuiltInAuth({ excludedPaths: EXCLUDED });
    const user = auth.mint({ name: 'ops@contoso.com', roles: ['Operations.Read'] }).token;
    const app = auth.mint({ appId: PIPELINE, roles: ['Operations.Execute', 'Operations.Execute'] }).token;

    // Act
    const asUser = auth.admit('/api/audit', { authorization: `Bearer ${user}` });
    const asApp = auth.admit('/api/runs/x/cancel', { authorization: `bearer ${app}` });

    // Assess
    expect(asUser.ok && parseClientPrincipal(headerReader(asUser.headers))).toMatchObject({
      name: 'ops@contoso.com',
      roles: ['Operations.Read'],
      actor: 'user:ops@contoso.com',
    });
    expect(asApp.ok && parseClientPrincipal(headerReader(asApp.headers))).toMatchObject({
      roles: ['Operations.Execute'],
      actor: `app:${PIPELINE}`,
    });
    expect(asApp.ok && asApp.headers['x-ms-client-principal-name']).toBeUndefined();
    expect(asApp.ok && asApp.headers['x-ms-client-principal-idp']).toBe('aad');
  });

  it('refuses tokens it did not sign, tampered or expired ones, with 401', () => {
    // Prepare
    let now = new Date('2026-01-01T00:00:00Z');
    const auth = new BuiltInAuth({ excludedPaths: EXCLUDED, now: () => now });
    const other = new BuiltInAuth({ excludedPaths: EXCLUDED });
    const { token, expiresOn } = auth.mint({ name: 'ops@contoso.com', roles: ['Operations.Read'] }, 5);
    const [header, payload, signature] = token.split('.') as [string, string, string];
    const widened = Buffer.from(
      JSON.stringify({
        ...JSON.parse(Buffer.from(payload, 'base64url').toString()),
        roles: ['Operations.Approve'],
      }),
    ).toString('base64url');

    // Act
    const foreign = auth.admit('/api/audit', {
      authorization: `Bearer ${other.mint({ name: 'x@y', roles: [] }).token}`,
    });
    const tampered = auth.admit('/api/audit', { authorization: `Bearer ${header}.${widened}.${signature}` });
    const valid = auth.admit('/api/audit', { authorization: `Bearer ${token}` });
    now = new Date(now.getTime() + 5 * 60_000);
    const expired = auth.admit('/api/audit', { authorization: `Bearer ${token}` });

    // Assess
    expect(expiresOn.toISOString()).toBe('2026-01-01T00:05:00.000Z');
    expect(foreign).toMatchObject({ ok: false, status: 401 });
    expect(tampered).toMatchObject({ ok: false, status: 401 });
    expect(valid.ok).toBe(true);
    expect(expired).toMatchObject({
      ok: false,
      status: 401,
      headers: { 'www-authenticate': 'Bearer error="invalid_token"' },
    });
  });

  it('strips client-sent principal headers everywhere; excluded paths need no token; others get the default caller or 401', () => {
    // Prepare
    const forged = principalHeaders({ name: 'admin@contoso.com', roles: ['Operations.Approve'] });
    const strict = new BuiltInAuth({ excludedPaths: EXCLUDED });
    const developer = new BuiltInAuth({
      excludedPaths: EXCLUDED,
      defaultCaller: { name: 'developer@localhost', roles: ['Operations.Read'] },
    });

    // Act
    const webhook = strict.admit('/Runtime/Webhooks/EventGrid/', { ...forged, host: 'x' });
    const health = strict.admit('/api/health', { authorization: 'Bearer not-a-token' });
    const refused = strict.admit('/api/audit', forged);
    const defaulted = developer.admit('/api/audit', forged);

    // Assess
    expect(webhook).toEqual({ ok: true, headers: { host: 'x' }, caller: undefined });
    expect(health.ok).toBe(true);
    expect(refused).toMatchObject({ ok: false, status: 401, headers: { 'www-authenticate': 'Bearer' } });
    expect(defaulted.ok && parseClientPrincipal(headerReader(defaulted.headers))).toMatchObject({
      actor: 'user:developer@localhost',
      roles: ['Operations.Read'],
    });
  });

  it('mints only for a valid identity and lifetime, naming every problem', () => {
    // Prepare
    const auth = new BuiltInAuth({ excludedPaths: [] });

    // Act / Assess
    expect(identityProblems({ name: 'ops@contoso.com', roles: ['Operations.Read'] })).toEqual([]);
    expect(identityProblems({ roles: Array(21).fill('A') })).toEqual([
      'roles: at most 20',
      'name or app: give exactly one (a user has a name, an app an app id)',
    ]);
    expect(identityProblems({ name: 'has space', appId: 'nope', roles: ['ok', 'not ok'] })).toHaveLength(4);
    expect(() => auth.mint({ name: 'a@b', roles: [] }, 0)).toThrow(/minutes: a whole number from 1 to 1440/);
    expect(() => new BuiltInAuth({ excludedPaths: [], defaultCaller: { roles: [] } })).toThrow(
      /Invalid default caller/,
    );
  });
});

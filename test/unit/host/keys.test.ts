import { describe, expect, it } from 'vitest';
import { isAuthorized, keySettingsFromEnv, presentedKey } from '../../../src/local/host/keys';

const on = keySettingsFromEnv({
  STAMPKEEPER_LOCAL_REQUIRE_KEYS: 'true',
  STAMPKEEPER_LOCAL_MASTER_KEY: 'master',
  STAMPKEEPER_LOCAL_FUNCTION_KEY: 'function',
  STAMPKEEPER_LOCAL_EVENTGRID_KEY: 'eventgrid',
});

describe('function key checks', () => {
  it('lets everything through when checking is off (Core Tools default)', () => {
    // Prepare
    const off = keySettingsFromEnv({});
    // Act / Assess
    expect(isAuthorized(off, { kind: 'admin' }, undefined)).toBe(true);
    expect(isAuthorized(off, { kind: 'function', authLevel: 'admin' }, undefined)).toBe(true);
  });

  it.each([
    [{ kind: 'function', authLevel: 'anonymous' }, undefined, true],
    [{ kind: 'function', authLevel: 'function' }, undefined, false],
    [{ kind: 'function', authLevel: 'function' }, 'wrong', false],
    [{ kind: 'function', authLevel: 'function' }, 'function', true],
    [{ kind: 'function', authLevel: 'function' }, 'master', true],
    [{ kind: 'function', authLevel: undefined }, 'function', true],
    [{ kind: 'function', authLevel: 'admin' }, 'function', false],
    [{ kind: 'function', authLevel: 'admin' }, 'master', true],
    [{ kind: 'admin' }, 'function', false],
    [{ kind: 'admin' }, 'eventgrid', false],
    [{ kind: 'admin' }, 'master', true],
    [{ kind: 'systemKey', name: 'eventgrid_extension' }, 'eventgrid', true],
    [{ kind: 'systemKey', name: 'eventgrid_extension' }, 'master', true],
    [{ kind: 'systemKey', name: 'eventgrid_extension' }, 'function', false],
    [{ kind: 'systemKey', name: 'eventgrid_extension' }, 'eventgri', false],
  ] as const)('%j with key %s -> %s', (target, key, expected) => {
    // Act / Assess
    expect(isAuthorized(on, target, key)).toBe(expected);
  });

  it('takes the key from x-functions-key first, then from the code query parameter', () => {
    // Act / Assess
    expect(presentedKey({ 'x-functions-key': 'h' }, new URLSearchParams('code=q'))).toBe('h');
    expect(presentedKey({}, new URLSearchParams('code=q'))).toBe('q');
    expect(presentedKey({}, new URLSearchParams())).toBeUndefined();
  });

  it('refuses to turn checking on without a master key, and a malformed flag, without echoing values', () => {
    // Act / Assess
    expect(() => keySettingsFromEnv({ STAMPKEEPER_LOCAL_REQUIRE_KEYS: 'true' })).toThrow(
      /STAMPKEEPER_LOCAL_MASTER_KEY must be set/,
    );
    expect(() => keySettingsFromEnv({ STAMPKEEPER_LOCAL_REQUIRE_KEYS: 'yes please' })).toThrow(
      /STAMPKEEPER_LOCAL_REQUIRE_KEYS must be "true" or "false"\.$/,
    );
  });
});

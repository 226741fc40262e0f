/**
 * A `TokenCredential` for the sandbox: it issues opaque fake tokens bound to the audience of the
 * scope asked for, and the emulated services check them (a token for Event Grid is refused by Key
 * Vault, as Entra ID audiences would be). Token lifetimes run on real time, not the sandbox clock,
 * because the SDKs' token cyclers compare `expiresOnTimestamp` with `Date.now()`.
 */

import { randomBytes } from 'node:crypto';
import type { AccessToken, GetTokenOptions, TokenCredential } from '@azure/core-auth';

const TOKEN_LIFETIME_MS = 60 * 60 * 1000;
const MAX_REMEMBERED = 10_000;

export interface SandboxTokenInfo {
  audience: string;
  tenantId: string | undefined;
  expiresOnTimestamp: number;
}

export interface SandboxCredential extends TokenCredential {
  /** Audience and expiry of a token this credential issued; `undefined` for any other string. */
  inspect(token: string): SandboxTokenInfo | undefined;
  /** How many tokens were issued (tests use it to see that the challenge flow asked for one). */
  readonly issued: number;
}

/** `https://vault.azure.net/.default` -> `https://vault.azure.net`. */
function audienceOfScope(scope: string): string {
  return scope.replace(/\/\.default$/, '').replace(/\/$/, '');
}

export function createSandboxCredential(): SandboxCredential {
  const tokens = new Map<string, SandboxTokenInfo>();
  let issued = 0;
  return {
    async getToken(scopes: string | string[], options?: GetTokenOptions): Promise<AccessToken> {
      const list = Array.isArray(scopes) ? scopes : [scopes];
      const first = list[0];
      if (!first) throw new Error('sandbox credential: getToken needs at least one scope');
      const token = `sandbox.${randomBytes(24).toString('base64url')}`;
      const info: SandboxTokenInfo = {
        audience: audienceOfScope(first),
        tenantId: options?.tenantId,
        expiresOnTimestamp: Date.now() + TOKEN_LIFETIME_MS,
      };
      if (tokens.size >= MAX_REMEMBERED) {
        const oldest = tokens.keys().next().value;
        if (oldest !== undefined) tokens.delete(oldest);
      }
      tokens.set(token, info);
      issued += 1;
      return { token, expiresOnTimestamp: info.expiresOnTimestamp, tokenType: 'Bearer' };
    },
    inspect(token: string) {
      return tokens.get(token);
    },
    get issued() {
      return issued;
    },
  };
}

/** Extracts the token of an `Authorization: Bearer <token>` header. */
export function bearerToken(authorization: string | undefined): string | undefined {
  if (!authorization) return undefined;
  const match = /^Bearer\s+(\S+)$/i.exec(authorization.trim());
  return match?.[1];
}

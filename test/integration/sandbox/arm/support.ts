import { createHttpHeaders, createPipelineRequest } from '@azure/core-rest-pipeline';
import { createSandbox, type Sandbox, type Scenario } from '../../../../src/local/sandbox';

export const START = '2026-01-01T00:00:00.000Z';
export const SUB = '00000000-0000-0000-0000-000000000000';
export const RG = 'rg-stampkeeper-sandbox';
export const ARM = 'https://management.azure.com';

/** A sandbox with the given ARM estate (and optional vaults / consumers). */
export function armSandbox(extra: Partial<Scenario> = {}): Sandbox {
  return createSandbox({ scenario: { seed: 'arm-tests', clock: { start: START }, ...extra } });
}

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  json: unknown;
  text: string;
}

/**
 * A raw request through the sandbox's httpClient, to see the wire shapes the SDKs hide. `token`:
 * the scope to get a token for (default ARM's), `null` for none, or a literal Authorization value.
 */
export async function raw(
  sandbox: Sandbox,
  method: string,
  url: string,
  options: {
    body?: unknown;
    scope?: string | null;
    authorization?: string;
    headers?: Record<string, string>;
  } = {},
): Promise<RawResponse> {
  const headers = createHttpHeaders({ 'content-type': 'application/json', ...(options.headers ?? {}) });
  if (options.authorization !== undefined) headers.set('authorization', options.authorization);
  else if (options.scope !== null) {
    const token = await sandbox.credential.getToken(options.scope ?? 'https://management.azure.com/.default');
    headers.set('authorization', `Bearer ${token!.token}`);
  }
  const request = createPipelineRequest({
    url,
    method: method as 'GET',
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  const response = await sandbox.httpClient.sendRequest(request);
  const text = response.bodyAsText ?? '';
  let json: unknown;
  try {
    json = text === '' ? undefined : JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers.toJSON(), json, text };
}

/** The outcome of a promise that must fail. */
export async function failureOf(
  work: Promise<unknown>,
): Promise<Error & { statusCode?: number; code?: string }> {
  const outcome = await work.then(
    () => undefined,
    (error: unknown) => error,
  );
  if (!(outcome instanceof Error)) throw new Error('expected the call to fail');
  return outcome as Error & { statusCode?: number; code?: string };
}

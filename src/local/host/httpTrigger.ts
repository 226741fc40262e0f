/**
 * Conversions between Node's HTTP messages and the RPC shapes `@azure/functions` reads and writes:
 * the request as `{ http: { method, url, headers, query, params, body } }` (what `fromRpcTypedData`
 * turns into an `HttpRequest`), the response as the `{ http: { statusCode, headers, cookies, body } }`
 * that `toRpcHttp` produced.
 */
import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import type { RpcTypedData } from './types';

export interface RpcHttpRequestInput {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  params: Record<string, string>;
  body: Buffer;
}

/** Builds the RPC HTTP trigger value. Repeated headers are joined with ", " (as ASP.NET does). */
export function toRpcHttpRequest(input: RpcHttpRequestInput): RpcTypedData {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(input.headers)) {
    if (value === undefined) continue;
    headers[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  const query: Record<string, string> = {};
  for (const [name, value] of new URL(input.url).searchParams) {
    query[name] = name in query ? `${query[name]},${value}` : value;
  }
  return {
    http: {
      method: input.method.toUpperCase(),
      url: input.url,
      headers,
      query,
      params: input.params,
      body: input.body.length > 0 ? { bytes: new Uint8Array(input.body) } : undefined,
    },
  };
}

interface RpcNullable<T> {
  value?: T | null;
}

interface RpcCookie {
  name?: string;
  value?: string;
  domain?: RpcNullable<string> | null;
  path?: RpcNullable<string> | null;
  expires?: RpcNullable<{ seconds?: number | string }> | null;
  secure?: RpcNullable<boolean> | null;
  httpOnly?: RpcNullable<boolean> | null;
  sameSite?: string | null;
  maxAge?: RpcNullable<number> | null;
}

export interface RpcHttpResponse {
  statusCode?: string | number;
  headers?: Record<string, string>;
  cookies?: RpcCookie[];
  body?: RpcTypedData | null;
}

/** Finds the HTTP response among what `getResponse` returned (`$return` or a named http output). */
export function findHttpResponse(
  returnValue: RpcTypedData | null | undefined,
  outputData: Array<{ name?: string | null; data?: RpcTypedData | null }> | undefined,
): RpcHttpResponse | undefined {
  if (returnValue?.http) return returnValue.http as RpcHttpResponse;
  const output = outputData?.find((o) => o.data?.http);
  return output?.data?.http as RpcHttpResponse | undefined;
}

/** The bytes of an RPC typed body. */
export function typedDataToBuffer(data: RpcTypedData | null | undefined): Buffer {
  if (!data) return Buffer.alloc(0);
  if (data.bytes) return Buffer.from(data.bytes);
  if (typeof data.string === 'string') return Buffer.from(data.string, 'utf8');
  if (typeof data.json === 'string') return Buffer.from(data.json, 'utf8');
  if (typeof data.int === 'number') return Buffer.from(String(data.int));
  if (typeof data.double === 'number') return Buffer.from(String(data.double));
  return Buffer.alloc(0);
}

/** Writes an RPC HTTP response to Node's response. */
export function writeRpcHttpResponse(res: ServerResponse, response: RpcHttpResponse): void {
  const status = Number(response.statusCode ?? 200);
  const body = typedDataToBuffer(response.body);
  for (const [name, value] of Object.entries(response.headers ?? {})) res.setHeader(name, value);
  const cookies = (response.cookies ?? []).map(toSetCookie);
  if (cookies.length > 0) res.setHeader('set-cookie', cookies);
  res.statusCode = Number.isInteger(status) && status >= 100 && status <= 999 ? status : 500;
  res.end(body);
}

/** One `Set-Cookie` value (RFC 6265) from an RPC cookie. */
export function toSetCookie(cookie: RpcCookie): string {
  const parts = [`${cookie.name ?? ''}=${cookie.value ?? ''}`];
  if (cookie.domain?.value) parts.push(`Domain=${cookie.domain.value}`);
  if (cookie.path?.value) parts.push(`Path=${cookie.path.value}`);
  const seconds = cookie.expires?.value?.seconds;
  if (seconds !== undefined && seconds !== null)
    parts.push(`Expires=${new Date(Number(seconds) * 1000).toUTCString()}`);
  if (typeof cookie.maxAge?.value === 'number') parts.push(`Max-Age=${cookie.maxAge.value}`);
  if (cookie.secure?.value) parts.push('Secure');
  if (cookie.httpOnly?.value) parts.push('HttpOnly');
  const sameSite = { lax: 'Lax', strict: 'Strict', explicitNone: 'None' }[cookie.sameSite ?? ''];
  if (sameSite) parts.push(`SameSite=${sameSite}`);
  return parts.join('; ');
}

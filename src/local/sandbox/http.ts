/**
 * Small helpers shared by the emulated services: reading a pipeline request body, building
 * pipeline responses, and Azure-shaped error bodies. Every emulated service answers through these so
 * that the shapes stay consistent and no service has to know about core-rest-pipeline details.
 */

import { randomUUID } from 'node:crypto';
import type { HttpHeaders, PipelineRequest, PipelineResponse } from '@azure/core-rest-pipeline';
import { createHttpHeaders } from '@azure/core-rest-pipeline';

/** One request as an emulated service sees it: already parsed, body read as text. */
export interface SandboxRequest {
  readonly method: string;
  readonly url: URL;
  readonly headers: HttpHeaders;
  readonly bodyText: string | undefined;
  readonly original: PipelineRequest;
}

/** What an emulated service answers; turned into a `PipelineResponse` by the router. */
export interface SandboxReply {
  status: number;
  headers?: Record<string, string>;
  /** Serialised as JSON unless it is already a string; `undefined` means an empty body. */
  body?: unknown;
}

/** Reads whatever body type the SDK pipeline produced (string, bytes, stream, stream factory). */
export async function readRequestBody(request: PipelineRequest): Promise<string | undefined> {
  const body = request.body;
  if (body === undefined || body === null) return undefined;
  if (typeof body === 'string') return body;
  if (body instanceof ArrayBuffer) return Buffer.from(body).toString('utf8');
  if (ArrayBuffer.isView(body))
    return Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8');
  if (typeof Blob !== 'undefined' && body instanceof Blob) return await body.text();
  const stream = typeof body === 'function' ? body() : body;
  if (stream && typeof (stream as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function') {
    const chunks: Buffer[] = [];
    for await (const chunk of stream as AsyncIterable<Uint8Array | string>) {
      chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk));
    }
    return Buffer.concat(chunks).toString('utf8');
  }
  if (stream && typeof (stream as ReadableStream<Uint8Array>).getReader === 'function') {
    return await new Response(stream as ReadableStream<Uint8Array>).text();
  }
  throw new TypeError('sandbox: unsupported request body type (FormData is not emulated)');
}

export async function toSandboxRequest(request: PipelineRequest): Promise<SandboxRequest> {
  return {
    method: request.method.toUpperCase(),
    url: new URL(request.url),
    headers: request.headers,
    bodyText: await readRequestBody(request),
    original: request,
  };
}

export function toPipelineResponse(request: PipelineRequest, reply: SandboxReply): PipelineResponse {
  const headers = createHttpHeaders({
    'x-ms-request-id': randomUUID(),
    date: new Date().toUTCString(),
    ...(reply.headers ?? {}),
  });
  let bodyAsText: string | null = null;
  if (reply.body !== undefined) {
    bodyAsText = typeof reply.body === 'string' ? reply.body : JSON.stringify(reply.body);
    if (!headers.has('content-type')) headers.set('content-type', 'application/json; charset=utf-8');
  }
  headers.set('content-length', String(Buffer.byteLength(bodyAsText ?? '')));
  const requestId = request.headers.get('x-ms-client-request-id');
  if (requestId) headers.set('x-ms-client-request-id', requestId);
  return { request, status: reply.status, headers, bodyAsText };
}

/** The `{ error: { code, message } }` body every Azure data plane in scope uses. */
export function azureError(
  status: number,
  code: string,
  message: string,
  extra?: { innererror?: { code: string }; headers?: Record<string, string> },
): SandboxReply {
  const error: Record<string, unknown> = { code, message };
  if (extra?.innererror) error.innererror = extra.innererror;
  return { status, body: { error }, headers: extra?.headers };
}

/** Parses a JSON body; `undefined` with a reason when it is missing or malformed. */
export function parseJson(
  text: string | undefined,
): { ok: true; value: unknown } | { ok: false; reason: string } {
  if (text === undefined || text.trim() === '') return { ok: false, reason: 'the request body is empty' };
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (err) {
    return { ok: false, reason: `the request body is not valid JSON (${(err as Error).message})` };
  }
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

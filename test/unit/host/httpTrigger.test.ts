import { describe, expect, it } from 'vitest';
import {
  findHttpResponse,
  toRpcHttpRequest,
  toSetCookie,
  typedDataToBuffer,
} from '../../../src/local/host/httpTrigger';

describe('HTTP conversions', () => {
  it('builds the RPC request the library reads: headers joined, query, params, body as bytes', () => {
    // Act
    const data = toRpcHttpRequest({
      method: 'post',
      url: 'http://127.0.0.1:7071/api/items/1?a=1&a=2&b=x',
      headers: { 'content-type': 'application/json', 'x-multi': ['one', 'two'] },
      params: { id: '1' },
      body: Buffer.from('{"k":1}'),
    });
    // Assess
    const http = data.http as Record<string, unknown>;
    expect(http.method).toBe('POST');
    expect(http.headers).toEqual({ 'content-type': 'application/json', 'x-multi': 'one, two' });
    expect(http.query).toEqual({ a: '1,2', b: 'x' });
    expect(http.params).toEqual({ id: '1' });
    expect(Buffer.from((http.body as { bytes: Uint8Array }).bytes).toString()).toBe('{"k":1}');
  });

  it('leaves the body out when the request has none', () => {
    // Act
    const data = toRpcHttpRequest({
      method: 'GET',
      url: 'http://h/api/x',
      headers: {},
      params: {},
      body: Buffer.alloc(0),
    });
    // Assess
    expect((data.http as { body?: unknown }).body).toBeUndefined();
  });

  it('writes Set-Cookie values with every attribute', () => {
    // Act
    const cookie = toSetCookie({
      name: 'sid',
      value: 'abc',
      domain: { value: 'example.org' },
      path: { value: '/' },
      expires: { value: { seconds: 0 } },
      maxAge: { value: 60 },
      secure: { value: true },
      httpOnly: { value: true },
      sameSite: 'explicitNone',
    });
    // Assess
    expect(cookie).toBe(
      'sid=abc; Domain=example.org; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=60; Secure; HttpOnly; SameSite=None',
    );
  });

  it('finds the response in $return or in a named http output, and reads typed bodies', () => {
    // Act / Assess
    expect(findHttpResponse({ http: { statusCode: '201' } }, [])).toEqual({ statusCode: '201' });
    expect(findHttpResponse(null, [{ name: 'res', data: { http: { statusCode: '202' } } }])).toEqual({
      statusCode: '202',
    });
    expect(findHttpResponse(undefined, [])).toBeUndefined();
    expect(typedDataToBuffer({ string: 'hé' }).toString('utf8')).toBe('hé');
    expect(typedDataToBuffer({ json: '{"a":1}' }).toString()).toBe('{"a":1}');
    expect(typedDataToBuffer(null).length).toBe(0);
  });
});

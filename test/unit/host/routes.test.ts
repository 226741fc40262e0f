import { describe, expect, it } from 'vitest';
import {
  type HttpRoute,
  matchRoute,
  parseRouteTemplate,
  pathAfterPrefix,
  resolveRoute,
} from '../../../src/local/host/routes';

const route = (functionName: string, template: string, methods: string[] = []): HttpRoute => ({
  functionName,
  template: parseRouteTemplate(template),
  methods,
});

describe('route templates', () => {
  it.each([
    ['items/{id}', ['items', '42'], { id: '42' }],
    ['ITEMS/{id}', ['items', '42'], { id: '42' }],
    ['items/{id}/{tag?}', ['items', '42'], { id: '42' }],
    ['items/{id}/{tag?}', ['items', '42', 'red'], { id: '42', tag: 'red' }],
    ['items/{id:int}', ['items', '-7'], { id: '-7' }],
    ['files/{*path}', ['files', 'a', 'b.txt'], { path: 'a/b.txt' }],
    ['files/{*path}', ['files'], {}],
    ['', [], {}],
  ])('%s matches %j', (template, segments, params) => {
    // Act / Assess
    expect(matchRoute(parseRouteTemplate(template), segments)).toEqual(params);
  });

  it.each([
    ['items/{id}', ['items']],
    ['items/{id}', ['items', '1', 'extra']],
    ['items/{id:int}', ['items', 'abc']],
    ['items/{id:guid}', ['items', 'not-a-guid']],
    ['items/{id:bool}', ['items', 'yes']],
    ['other/{id}', ['items', '1']],
  ])('%s does not match %j', (template, segments) => {
    // Act / Assess
    expect(matchRoute(parseRouteTemplate(template), segments)).toBeUndefined();
  });

  it.each([
    ['a/{b', /must be a whole parameter/],
    ['a/b}', /unbalanced/],
    ['a//b', /empty segment/],
    ['{*rest}/b', /catch-all \{\*rest\} must be the last segment/],
    ['{id}/{ID}', /parameter "id" appears twice/],
  ])('rejects the malformed template %s', (template, message) => {
    // Act / Assess
    expect(() => parseRouteTemplate(template)).toThrow(message);
  });
});

describe('route resolution', () => {
  const routes = [
    route('byId', 'items/{id}', ['GET']),
    route('special', 'items/special', ['GET']),
    route('update', 'items/{id}', ['PUT']),
    route('any', 'anything'),
  ];

  it('prefers literal segments over parameters', () => {
    // Act
    const result = resolveRoute(routes, 'GET', ['items', 'special']);
    // Assess
    expect(result).toMatchObject({ kind: 'match', route: { functionName: 'special' } });
  });

  it('picks the route whose methods allow the request', () => {
    // Act
    const get = resolveRoute(routes, 'get', ['items', '3']);
    const put = resolveRoute(routes, 'PUT', ['items', '3']);
    // Assess
    expect(get).toMatchObject({ kind: 'match', route: { functionName: 'byId' }, params: { id: '3' } });
    expect(put).toMatchObject({ kind: 'match', route: { functionName: 'update' } });
  });

  it('says which methods are allowed when only the method is wrong, and none when nothing matches', () => {
    // Act
    const wrongMethod = resolveRoute(routes, 'DELETE', ['items', '3']);
    const nothing = resolveRoute(routes, 'GET', ['nope']);
    const anyMethod = resolveRoute(routes, 'PATCH', ['anything']);
    // Assess
    expect(wrongMethod).toEqual({ kind: 'methodNotAllowed', allowed: ['GET', 'PUT'] });
    expect(nothing).toEqual({ kind: 'none' });
    expect(anyMethod).toMatchObject({ kind: 'match' });
  });

  it('strips the route prefix (case-insensitive) and decodes segments', () => {
    // Act / Assess
    expect(pathAfterPrefix('/API/items/a%20b', 'api')).toEqual(['items', 'a b']);
    expect(pathAfterPrefix('/other/items', 'api')).toBeUndefined();
    expect(pathAfterPrefix('/items', '')).toEqual(['items']);
    expect(pathAfterPrefix('/v1/fn/items', 'v1/fn')).toEqual(['items']);
  });
});

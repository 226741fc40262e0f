import { describe, expect, it } from 'vitest';
import { evaluate, evaluateDeep, isExpression, Partial, Unknown } from './armEval';

const context = { parameters: { flags: { on: true }, names: ['a', 'b'], env: 'dev' } };

describe('partial evaluation of ARM expressions', () => {
  it('evaluates known functions over known values', () => {
    // Act
    const value = evaluate(
      "[union(createObject('A', parameters('env'), 'B', format('{0}-{1}', 'x', length(parameters('names')))), if(parameters('flags').on, createObject('C', 'it''s'), createObject()))]",
      context,
    );

    // Assess
    expect(value).toEqual({ A: 'dev', B: 'x-2', C: "it's" });
  });

  it('keeps the keys of an object whose values are known only at deployment', () => {
    // Act
    const value = evaluate(
      "[union(createObject('A', 'x'), createObject('B', reference(resourceId('Microsoft.Resources/deployments', 'm'), '2025-04-01').outputs.id.value))]",
      context,
    ) as Record<string, unknown>;

    // Assess
    expect(Object.keys(value)).toEqual(['A', 'B']);
    expect(value.B).toBeInstanceOf(Unknown);
    expect((value.B as Unknown).text).toBe(
      "reference(resourceId('Microsoft.Resources/deployments', 'm'), '2025-04-01').outputs.id.value",
    );
  });

  it('renders strings with deployment-time parts, and the scope of an extension resource id', () => {
    // Act
    const uri = evaluate("[format('https://{0}/api/alerts', reference('site').outputs.host.value)]", context);
    const id = evaluate(
      "[extensionResourceId('/subscriptions/s/resourceGroups/r/providers/Microsoft.KeyVault/vaults/v', 'Microsoft.Authorization/roleAssignments', guid('v', reference('id').outputs.principalId.value))]",
      context,
    );

    // Assess
    expect(uri).toBeInstanceOf(Partial);
    expect(String(uri)).toBe(`https://\${reference('site').outputs.host.value}/api/alerts`);
    expect(String(id)).toMatch(
      /^\/subscriptions\/s\/resourceGroups\/r\/providers\/Microsoft\.KeyVault\/vaults\/v\/providers\/Microsoft\.Authorization\/roleAssignments\/\$\{guid\(/,
    );
  });

  it('leaves a condition known only at deployment unknown, and evaluates nested JSON', () => {
    // Act
    const value = evaluateDeep(
      {
        a: "[if(empty(reference('x').outputs.v.value), 'p', 'q')]",
        b: ["[toLower('AB')]", '[[literal]'],
        c: 3,
      },
      context,
    ) as Record<string, unknown>;

    // Assess
    expect(value.a).toBeInstanceOf(Unknown);
    expect(value.b).toEqual(['ab', '[literal]']);
    expect(value.c).toBe(3);
    expect(isExpression('[[not one]')).toBe(false);
  });

  it('rejects what it cannot parse, and a parameter the template does not have', () => {
    expect(() => evaluate("[concat('a'", context)).toThrow();
    expect(() => evaluate("[parameters('missing')]", context)).toThrow(/unknown parameters/);
  });
});

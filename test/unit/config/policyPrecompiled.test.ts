/**
 * The deployment package validates the policy with the schema validator compiled at build time
 * (`scripts/policyValidator.ts`), not with the one Ajv compiles from the sources at start-up. Every
 * policy test runs again here, unchanged, on that precompiled validator: same problems, same paths
 * and lines, same defaults filled in. The module swapped in is the generated code itself (what the
 * build puts in the package in place of `policySchemaValidator.ts`), not a stand-in.
 */
import { expect, it, vi } from 'vitest';
import * as validator from '../../../src/lib/config/policySchemaValidator';
// The policy suites themselves, collected into this file (they import the swapped module).
import './policy.test';
import './rotationPolicy.test';

vi.mock('../../../src/lib/config/policySchemaValidator', async () => {
  const { createRequire } = await vi.importActual<typeof import('node:module')>('node:module');
  const { policyValidatorCode } = await vi.importActual<typeof import('../../../scripts/policyValidator')>(
    '../../../scripts/policyValidator',
  );
  // The generated code as CommonJS: its `require`s are Ajv's runtime helpers.
  const exports: Record<string, unknown> = {};
  new Function('exports', 'require', policyValidatorCode('cjs'))(exports, createRequire(__filename));
  return { ...exports, precompiled: true };
});

it('runs the policy tests of this file on the precompiled validator', () => {
  // Assess: the module the policy code imports is the generated one.
  expect((validator as { precompiled?: boolean }).precompiled).toBe(true);
  expect(Object.keys(validator).sort()).toEqual(['precompiled', 'validatePolicySchema']);
});

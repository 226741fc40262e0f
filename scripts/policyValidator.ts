/**
 * Generates, at build time, the policy schema validator the deployment package carries: the validate
 * function of `src/lib/config/policySchemaValidator.ts`, compiled by Ajv with the same schema and
 * options and emitted as standalone code (https://ajv.js.org/standalone.html), so that the deployed
 * app does not compile the schema when it starts (about half of the unbundled app's import:
 * docs/decisions/0007-deployment-package.md). `npm run build` swaps the module for this code with
 * the esbuild plugin below; the checks and the errors (paths, `parentSchema`, defaults) are Ajv's
 * own generated code either way: `test/unit/config/policyPrecompiled.test.ts` runs the policy tests
 * on it, `test/unit/config/build.test.ts` compares a built package's messages with the sources'.
 */
import { join, resolve } from 'node:path';
import standaloneCode from 'ajv/dist/standalone';
import type { Plugin } from 'esbuild';
import policySchema from '../policy/stampkeeper.policy.schema.json';
import { policyAjv } from '../src/lib/config/policySchemaValidator';

const POLICY_SCHEMA_KEY = 'stampkeeper.policy';
/** The source module the build replaces (without extension). */
export const POLICY_VALIDATOR_MODULE = resolve(
  __dirname,
  '..',
  'src',
  'lib',
  'config',
  'policySchemaValidator',
);

/**
 * The precompiled validator as a module exporting `validatePolicySchema`, as the source module
 * does: an ES module for the bundle, or CommonJS (for `bench/coldStart.ts`'s comparison). Its
 * `require`s (Ajv's small runtime helpers) resolve from the repository's node_modules.
 */
export function policyValidatorCode(format: 'esm' | 'cjs' = 'esm'): string {
  const ajv = policyAjv({ code: { source: true, esm: format === 'esm' } });
  ajv.addSchema(policySchema, POLICY_SCHEMA_KEY);
  return standaloneCode(ajv, { validatePolicySchema: POLICY_SCHEMA_KEY });
}

/** esbuild plugin: imports of `policySchemaValidator` get the precompiled validator instead. */
export function precompiledPolicyValidator(): Plugin {
  return {
    name: 'stampkeeper-precompiled-policy-validator',
    setup(build) {
      build.onResolve({ filter: /[\\/]policySchemaValidator(\.[cm]?[jt]s)?$/ }, (args) => {
        const target = resolve(args.resolveDir, args.path).replace(/\.[cm]?[jt]s$/, '');
        if (target !== POLICY_VALIDATOR_MODULE) return undefined;
        return { path: POLICY_VALIDATOR_MODULE, namespace: 'stampkeeper-precompiled' };
      });
      build.onLoad({ filter: /.*/, namespace: 'stampkeeper-precompiled' }, () => ({
        contents: policyValidatorCode(),
        loader: 'js',
        resolveDir: join(POLICY_VALIDATOR_MODULE, '..'),
      }));
    },
  };
}

/**
 * The policy file's JSON Schema check (`policy/stampkeeper.policy.schema.json`), as one Ajv
 * validate function. Here, in the sources (tests, `npm start -- --source`, tsx), Ajv compiles the
 * schema when this module loads. The deployment package does not carry this module: `npm run
 * build` replaces it with the same validator compiled at build time by `scripts/policyValidator.ts`
 * (Ajv standalone code, same schema and options, so the same checks and the same errors), so a cold
 * start does not pay for compiling the schema. The app may import only `validatePolicySchema` from
 * here (the build's replacement exports nothing else); the rest is for the build's generator.
 */
import Ajv, { type Options, type ValidateFunction } from 'ajv';
import policySchema from '../../../policy/stampkeeper.policy.schema.json';

/**
 * Every error (not the first only), defaults filled in, the failing schema in each error (the
 * messages read `parentSchema`), and no unknown keyword or format let through.
 */
export const POLICY_AJV_OPTIONS: Options = {
  allErrors: true,
  useDefaults: true,
  verbose: true,
  strict: true,
};

/**
 * An Ajv instance set up for the policy schema: `POLICY_AJV_OPTIONS` plus `options` (the build adds
 * `code.source` to generate standalone code), with the schema's editor-only keywords known.
 */
export function policyAjv(options: Options = {}): Ajv {
  const ajv = new Ajv({ ...POLICY_AJV_OPTIONS, ...options });
  // Editor-only keywords (VS Code / yaml-language-server): annotations for Ajv, used for messages.
  ajv.addVocabulary(['errorMessage', 'patternErrorMessage', 'markdownDescription']);
  return ajv;
}

/** Validates parsed policy data against the schema (filling in defaults); errors in `.errors`. */
export const validatePolicySchema: ValidateFunction = policyAjv().compile(policySchema);

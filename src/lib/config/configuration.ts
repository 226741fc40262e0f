/**
 * Start-up configuration: the settings, the policy they point to, and their cross-check, validated
 * together so that one start-up failure lists every problem at once.
 */
import { ConfigurationError } from '../core/errors';
import { loadPolicy, loadPolicySync, type Policy } from './policy';
import {
  checkPolicyAgainstSettings,
  type LoadSettingsOptions,
  policyPathFrom,
  type Settings,
  validateSettings,
} from './settings';

export interface Configuration {
  settings: Settings;
  policy: Policy;
}

/**
 * Loads the settings and the policy file they name, and checks them against each other. Throws
 * one `ConfigurationError` listing every problem (settings, policy file, cross-check).
 */
export async function loadConfiguration(
  env: NodeJS.ProcessEnv = process.env,
  options: LoadSettingsOptions = {},
): Promise<Configuration> {
  const settings = validateSettings(env, options);
  const policy = await loadPolicy(policyPathFrom(env, options.appRoot)).catch(asConfigurationError);
  return finish(settings, policy);
}

/** Synchronous `loadConfiguration`, for module-load time (trigger registrations are synchronous). */
export function loadConfigurationSync(
  env: NodeJS.ProcessEnv = process.env,
  options: LoadSettingsOptions = {},
): Configuration {
  const settings = validateSettings(env, options);
  let policy: Policy | ConfigurationError;
  try {
    policy = loadPolicySync(policyPathFrom(env, options.appRoot));
  } catch (error) {
    policy = asConfigurationError(error);
  }
  return finish(settings, policy);
}

function asConfigurationError(error: unknown): ConfigurationError {
  if (error instanceof ConfigurationError) return error;
  throw error;
}

function finish(
  settings: ReturnType<typeof validateSettings>,
  policy: Policy | ConfigurationError,
): Configuration {
  const problems: string[] = [];
  if (!settings.ok) problems.push(...settings.problems.map((p) => `setting ${p}`));
  if (policy instanceof ConfigurationError) {
    problems.push(...policy.problems.map((p) => `policy ${String(policy.metadata.policyPath)}: ${p}`));
  }
  if (settings.ok && !(policy instanceof ConfigurationError)) {
    problems.push(
      ...checkPolicyAgainstSettings(policy, settings.settings).map((p) => `policy ${policy.source}: ${p}`),
    );
  }
  if (problems.length > 0) {
    throw new ConfigurationError(
      `stampkeeper cannot start: ${problems.length} configuration problem${problems.length === 1 ? '' : 's'}:\n${problems
        .map((p) => `  - ${p}`)
        .join('\n')}`,
      problems,
      { cause: policy instanceof ConfigurationError ? policy : undefined },
    );
  }
  return { settings: (settings as { settings: Settings }).settings, policy: policy as Policy };
}

/**
 * Start-up configuration: the settings, the policy they point to, and their cross-check, validated
 * together so that one start-up failure lists every problem at once.
 */
import { ConfigurationError } from '../core/errors';
import { loadPolicy, loadPolicySync, type Policy } from './policy';
import {
  checkPolicyAgainstSettings,
  defaultPolicyPath,
  type LoadSettingsOptions,
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
  return combine(env, options, (path) => loadPolicy(path));
}

/** Synchronous `loadConfiguration`, for module-load time (trigger registrations are synchronous). */
export function loadConfigurationSync(
  env: NodeJS.ProcessEnv = process.env,
  options: LoadSettingsOptions = {},
): Configuration {
  return combineSync(env, options, (path) => loadPolicySync(path));
}

async function combine(
  env: NodeJS.ProcessEnv,
  options: LoadSettingsOptions,
  load: (path: string) => Promise<Policy>,
): Promise<Configuration> {
  const settings = validateSettings(env, options);
  let policy: Policy | ConfigurationError;
  try {
    policy = await load(settings.ok ? settings.settings.policyPath : policyPathOf(env, options));
  } catch (error) {
    if (!(error instanceof ConfigurationError)) throw error;
    policy = error;
  }
  return finish(settings, policy);
}

function combineSync(
  env: NodeJS.ProcessEnv,
  options: LoadSettingsOptions,
  load: (path: string) => Policy,
): Configuration {
  const settings = validateSettings(env, options);
  let policy: Policy | ConfigurationError;
  try {
    policy = load(settings.ok ? settings.settings.policyPath : policyPathOf(env, options));
  } catch (error) {
    if (!(error instanceof ConfigurationError)) throw error;
    policy = error;
  }
  return finish(settings, policy);
}

function policyPathOf(env: NodeJS.ProcessEnv, options: LoadSettingsOptions): string {
  // Settings failed for another reason: the policy path itself always resolves.
  const result = validateSettings({ ...env, AzureWebJobsStorage: 'UseDevelopmentStorage=true' }, options);
  return result.ok ? result.settings.policyPath : defaultPolicyPath(options.appRoot);
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

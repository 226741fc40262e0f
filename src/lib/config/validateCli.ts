/**
 * `npm run validate -- [file]`: checks a policy file (default: the bundled one) and prints every
 * problem with its path in the file (exit code 1), or a one-line summary (exit code 0).
 */
import { relative } from 'node:path';
import { ConfigurationError } from '../core/errors';
import { loadPolicy, type Policy } from './policy';
import { defaultPolicyPath } from './settings';

/** Runs the validation for `args` (the command-line arguments), writing to `out`; returns the exit code. */
export async function runValidate(
  args: readonly string[],
  out: { log(line: string): void; error(line: string): void } = console,
): Promise<number> {
  if (args.length > 1 || args[0]?.startsWith('-')) {
    out.error('usage: npm run validate -- [policy-file]   (default: the bundled policy)');
    return 2;
  }
  const path = args[0] ?? defaultPolicyPath();
  const shown = relative(process.cwd(), path) || path;
  try {
    const policy = await loadPolicy(path);
    out.log(`OK ${shown}: ${summary(policy)}`);
    return 0;
  } catch (error) {
    if (!(error instanceof ConfigurationError)) throw error;
    out.error(`INVALID ${shown}: ${error.problems.length} problem${error.problems.length === 1 ? '' : 's'}`);
    for (const problem of error.problems) out.error(`  ${problem}`);
    return 1;
  }
}

function summary(policy: Policy): string {
  const count = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;
  return [
    count(policy.secrets.length, 'managed secret'),
    count(policy.notifications.channels.length, 'notification channel'),
    `${policy.deadLetters.length} dead-letter ${policy.deadLetters.length === 1 ? 'entity' : 'entities'}`,
    count(policy.playbooks.length, 'playbook'),
  ].join(', ');
}

if (require.main === module) {
  runValidate(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      console.error(error);
      process.exitCode = 1;
    },
  );
}

/**
 * Which app settings the code reads, found from the code itself rather than from a list kept by
 * hand: candidate names are every name-like string literal and every `process.env`-typed member
 * access in the settings module (found with the TypeScript compiler), plus the names the caller
 * adds; a candidate counts as read when setting it changes what the code does with its settings
 * (`validateSettings`, then the policy cross-check). A name the code never looks at cannot change
 * anything, so a stale or misspelled setting is not "read".
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import type { Policy } from '../../../src/lib/config/policy';
import { checkPolicyAgainstSettings, validateSettings } from '../../../src/lib/config/settings';
import { keySettingsFromEnv } from '../../../src/local/host/keys';
import { ROOT } from './bicep';

const SETTING_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Names in `dir`'s TypeScript files that may be settings (see the header). */
export function candidateNames(dir: string): Set<string> {
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.ts'))
    .map((f) => join(dir, f));
  const program = ts.createProgram(files, {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    types: ['node'],
    strict: true,
    noEmit: true,
    resolveJsonModule: true,
    esModuleInterop: true,
    skipLibCheck: true,
  });
  const checker = program.getTypeChecker();
  const names = new Set<string>();
  const isProcessEnv = (node: ts.Expression): boolean => {
    const type = checker.getTypeAtLocation(node);
    const symbol = type.aliasSymbol ?? type.getSymbol();
    return symbol?.getName() === 'ProcessEnv';
  };
  for (const file of files) {
    const source = program.getSourceFile(file);
    if (!source) continue;
    const visit = (node: ts.Node): void => {
      if (
        (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) &&
        SETTING_NAME.test(node.text)
      ) {
        names.add(node.text);
      } else if (ts.isPropertyAccessExpression(node) && isProcessEnv(node.expression)) {
        names.add(node.name.text);
      } else if (
        ts.isElementAccessExpression(node) &&
        ts.isStringLiteral(node.argumentExpression) &&
        isProcessEnv(node.expression)
      ) {
        names.add(node.argumentExpression.text);
      }
      ts.forEachChild(node, visit);
    };
    visit(source);
  }
  return names;
}

const PROBES = [
  'probe',
  '1',
  'true',
  'https://probe.example.com/x',
  '00000000-0000-4000-8000-000000000000',
  'probeacct01',
];

function differs(observe: (env: Record<string, string>) => string, name: string): boolean {
  const baselines: Array<Record<string, string>> = [
    { AzureWebJobsStorage: 'UseDevelopmentStorage=true' },
    {},
  ];
  return baselines.some((base) => {
    const without = Object.fromEntries(Object.entries(base).filter(([k]) => k !== name));
    const reference = observe(without);
    return PROBES.some((v) => observe({ ...without, [name]: v }) !== reference);
  });
}

/** Whether the app's configuration reads `name` (settings, then the policy cross-check). */
export function appReads(name: string, policy: Policy): boolean {
  const observe = (env: Record<string, string>): string => {
    const result = validateSettings(env);
    if (!result.ok) return JSON.stringify({ problems: result.problems });
    return JSON.stringify({
      settings: result.settings,
      policy: checkPolicyAgainstSettings(policy, result.settings),
    });
  };
  return differs(observe, name);
}

/** Whether the local host (tooling, never deployed) reads `name`. */
export function localHostReads(name: string): boolean {
  const observe = (env: Record<string, string>): string => {
    try {
      return JSON.stringify(keySettingsFromEnv(env));
    } catch (error) {
      return `error: ${error instanceof Error ? error.message : String(error)}`;
    }
  };
  return differs(observe, name);
}

/** The settings the app reads among the candidates of src/lib/config and `extra`. */
export function settingsTheAppReads(policy: Policy, extra: Iterable<string>): Set<string> {
  const candidates = new Set([...candidateNames(join(ROOT, 'src/lib/config')), ...extra]);
  return new Set([...candidates].filter((name) => appReads(name, policy)));
}

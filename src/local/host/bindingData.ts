/**
 * Binding helpers shared by the local host's listeners (timers, Storage queues, Service Bus):
 * `%Setting%` binding expressions, connection settings, and binding data in the RPC shapes the
 * host sends (`TypedData`: strings, Newtonsoft JSON, `DateTimeOffset`, the `sys` data).
 */
import { randomUUID } from 'node:crypto';
import type { RpcTypedData } from './types';

/** Looks up an app setting by name. */
export type ResolveSetting = (name: string) => string | undefined;

/**
 * Resolves `%Setting%` binding expressions in a binding property, as the host does at start-up.
 * Undefined for an absent or empty property; throws naming `what` and the setting (never its
 * value) when the property is not a string or a referenced setting is unset or empty.
 */
export function resolveBindingExpression(
  value: unknown,
  resolveSetting: ResolveSetting,
  what: string,
): string | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value !== 'string') throw new Error(`${what} must be a string.`);
  return value.replace(/%([^%]+)%/g, (_match, name: string) => {
    const resolved = resolveSetting(name);
    if (resolved === undefined || resolved === '') {
      throw new Error(`${what} refers to the app setting '${name}', which is not set.`);
    }
    return resolved;
  });
}

/**
 * The connection string a binding's `connection` names. Like the host, it looks the name up as
 * is, then with the `AzureWebJobs` prefix. Identity-based connections (`<name>__...` settings)
 * are reported as not served locally. The error names the setting, never its value.
 */
export function resolveConnectionString(
  connectionName: string,
  resolveSetting: ResolveSetting,
  identitySuffixes: string[],
  functionName: string,
): string {
  const value = resolveSetting(connectionName) ?? resolveSetting(`AzureWebJobs${connectionName}`);
  if (value !== undefined && value !== '') return value;
  const identity = identitySuffixes.find((suffix) => resolveSetting(`${connectionName}__${suffix}`));
  if (identity) {
    throw new Error(
      `[${functionName}] connection '${connectionName}' is identity-based (${connectionName}__${identity}); the local host serves connection strings only.`,
    );
  }
  throw new Error(
    `[${functionName}] connection setting '${connectionName}' is not set: expected a connection string in '${connectionName}' or 'AzureWebJobs${connectionName}'.`,
  );
}

/** A non-string .NET value as the host sends it over RPC: JSON (Newtonsoft). */
export function jsonData(value: unknown): RpcTypedData {
  return { json: JSON.stringify(value ?? null) };
}

export function stringData(value: string): RpcTypedData {
  return { string: value };
}

/** A date as Newtonsoft serializes a UTC `DateTimeOffset` (`+00:00`, not `Z`). */
export function dateTimeOffsetData(date: Date | undefined): RpcTypedData {
  if (!date) return { json: 'null' };
  return jsonData(date.toISOString().replace('Z', '+00:00'));
}

/** The `sys` binding data the host adds to every invocation. */
export function sysMetadata(functionName: string): RpcTypedData {
  return jsonData({ MethodName: functionName, UtcNow: new Date().toISOString(), RandGuid: randomUUID() });
}

/** `value` without its undefined members, so that spreading it over defaults keeps the defaults. */
export function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

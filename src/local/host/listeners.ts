/**
 * Trigger listeners other than HTTP, Event Grid and timers (which the server and scheduler serve
 * themselves) come from a table of factories keyed by trigger type (`queueTrigger`,
 * `serviceBusTrigger`). A trigger type without a factory is reported at start-up as not served locally.
 */
import type { HostConfig } from './hostConfig';
import type { HostLogger, Invoker, RegisteredFunction, TriggerListener } from './types';

export interface ListenerContext {
  invoker: Invoker;
  logger: HostLogger;
  hostConfig: HostConfig;
  /** The environment the app runs with (connection settings are looked up by name here). */
  env: Record<string, string | undefined>;
  /** How long the listener's `stop()` waits for running invocations before abandoning them. */
  stopTimeoutMs?: number;
}

/** Starts listening for one function; resolves once the listener runs. */
export type ListenerFactory = (fn: RegisteredFunction, context: ListenerContext) => Promise<TriggerListener>;

/** Factories keyed by trigger type (case-insensitive lookup). */
export type ListenerFactories = Record<string, ListenerFactory>;

/** Trigger types the host serves itself. */
export const BUILT_IN_TRIGGERS = ['httpTrigger', 'eventGridTrigger', 'timerTrigger'] as const;

export function findFactory(factories: ListenerFactories, triggerType: string): ListenerFactory | undefined {
  const wanted = triggerType.toLowerCase();
  const key = Object.keys(factories).find((k) => k.toLowerCase() === wanted);
  return key ? factories[key] : undefined;
}

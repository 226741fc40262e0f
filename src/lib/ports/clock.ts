/** Time, as a port: the sandbox clock can be advanced; production uses the system clock. */
export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

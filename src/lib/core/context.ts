/** Who a use case acts for and how, as every trigger passes it. */
export interface UseCaseContext {
  /** Who acts, e.g. `system:eventgrid`, `system:azure-monitor`, `system:timer`. */
  actor: string;
  correlationId: string;
  /** Unique per attempt (the invocation id): owner of the idempotency claim. */
  attemptId: string;
  /** Plan and audit, change nothing (overrides the app's setting for this call). */
  dryRun?: boolean;
  abortSignal?: AbortSignal;
}

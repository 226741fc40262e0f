import { isTerminal, type Run } from './types';

/** What the status endpoint shows of a run: no ETag, no lease owner, no outbox. */
export interface RunView {
  id: string;
  kind: string;
  kindVersion: number;
  target: string;
  state: Run['state'];
  currentStep: string | null;
  steps: Array<Record<string, unknown>>;
  dryRun: boolean;
  actor: string;
  correlationId: string;
  createdOn: string;
  updatedOn: string;
  dueOn: string | null;
  deadline: string | null;
  /** A cancel asked for while a step was in flight, not yet applied. */
  cancelRequested: { actor: string; reason: string; requestedOn: string } | null;
  error: Run['error'] | null;
}

/** The run as an operator reads it (input and outputs are redacted when stored). */
export function describeRun(run: Run): RunView {
  const iso = (d: Date | undefined) => (d ? d.toISOString() : null);
  return {
    id: run.id,
    kind: run.kind,
    kindVersion: run.kindVersion,
    target: run.target,
    state: run.state,
    currentStep: run.steps[run.currentStep]?.name ?? null,
    steps: run.steps.map((step) => ({
      name: step.name,
      status: step.status,
      attempts: step.attempts,
      ...(step.waits ? { waits: step.waits } : {}),
      ...(step.compensates ? { compensates: step.compensates } : {}),
      startedOn: iso(step.startedOn),
      endedOn: iso(step.endedOn),
      ...(step.output !== undefined ? { output: step.output } : {}),
      ...(step.error ? { error: step.error } : {}),
      ...(step.approval
        ? {
            approval: {
              requestedOn: step.approval.requestedOn.toISOString(),
              expiresOn: step.approval.expiresOn.toISOString(),
              decision: step.approval.decision ?? null,
              decidedBy: step.approval.decidedBy ?? null,
              decidedOn: iso(step.approval.decidedOn),
              ...(step.approval.comment ? { comment: step.approval.comment } : {}),
            },
          }
        : {}),
    })),
    dryRun: run.dryRun,
    actor: run.actor,
    correlationId: run.correlationId,
    createdOn: run.createdOn.toISOString(),
    updatedOn: run.updatedOn.toISOString(),
    dueOn: iso(run.dueOn),
    deadline: iso(run.deadline),
    cancelRequested:
      run.cancelRequest && !isTerminal(run.state) && run.state !== 'cancelling'
        ? { ...run.cancelRequest, requestedOn: run.cancelRequest.requestedOn.toISOString() }
        : null,
    error: run.error ?? null,
  };
}

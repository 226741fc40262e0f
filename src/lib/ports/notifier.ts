/** Notifications, as a port: one message fanned out to the channels the policy configures. */
export type Severity = 'info' | 'warning' | 'critical';

export interface Notification {
  /** Stable id: the same logical notification keeps its id across retries (receivers de-duplicate on it). */
  id: string;
  /** CloudEvents type, e.g. `com.stampkeeper.secret.nearExpiry`. */
  type: string;
  /** What it is about, e.g. `vaults/contoso-kv/secrets/cosmos-key`. */
  subject: string;
  severity: Severity;
  title: string;
  summary: string;
  /** Non-sensitive key / value facts shown in cards. */
  facts: Record<string, string>;
  correlationId: string;
  time: Date;
  /** Structured payload (CloudEvent `data`). Never a secret value. */
  data: Record<string, unknown>;
}

export interface ChannelResult {
  channel: string;
  ok: boolean;
  error?: string;
}

export interface Notifier {
  /** Sends to every configured channel; never throws for one failing channel, reports it instead. */
  notify(notification: Notification, options?: { abortSignal?: AbortSignal }): Promise<ChannelResult[]>;
}

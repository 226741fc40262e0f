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
  /** `sent`, `failed`, or `filtered` (below the channel's minimum severity). */
  status: 'sent' | 'failed' | 'filtered';
  /** Whether a retry may succeed (failed only). */
  retryable?: boolean;
  error?: string;
}

/** One delivery channel (Event Grid topic, Teams, generic webhook). */
export interface NotificationChannel {
  readonly name: string;
  readonly kind: string;
  /** Delivers one notification; throws a project error (retryable or not) on failure. */
  send(notification: Notification, options?: { abortSignal?: AbortSignal }): Promise<void>;
}

export interface Notifier {
  /**
   * Sends to the named channels (whose minimum severity the notification reaches); never throws for
   * a failing channel, reports it instead. Unknown channel names are reported as failures.
   */
  notify(
    notification: Notification,
    options: { channels: string[]; abortSignal?: AbortSignal },
  ): Promise<ChannelResult[]>;
}

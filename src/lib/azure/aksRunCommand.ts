/**
 * What the AKS run-command adapters share (`aksRoller.ts`, `aksScale.ts`): Kubernetes name checks
 * (before any command is built), the Entra cluster token, the objects `kubectl -o json` printed, and
 * which kubectl failures pass on a retry.
 */
import type { TokenCredential } from '@azure/core-auth';
import { redactText } from '../core/redact';

/** Kubernetes names (DNS-1123): nothing a shell could read as anything but a word. */
export const K8S_NAMESPACE = /^[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?$/;
/** A DNS-1123 subdomain (deployments, ScaledObjects): dot-separated labels, at most 253 characters. */
export const K8S_NAME =
  /^(?=.{1,253}$)[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*$/;
/** The AKS AAD server application: the audience of `clusterToken` for AAD-enabled clusters (`az aks command invoke`). */
export const AKS_AAD_SERVER_SCOPE = '6dae42f8-4368-4678-94ff-3960e28e3630/.default';

/**
 * The `clusterToken` of a run command. An Entra-enabled cluster refuses a command without one (400
 * `MissingAADClusterToken`); `az aks command invoke` sends it when the cluster's `aadProfile` says
 * so. Reading the cluster would need `managedClusters/read`: instead a command goes without a token
 * first, and a cluster that refuses it is sent the token from then on (remembered per process), so
 * no setting has to say which clusters are which. `always`: send it every time.
 */
export class ClusterTokens {
  private readonly needed = new Set<string>();

  constructor(
    private readonly credential: TokenCredential,
    private readonly always = false,
  ) {}

  /** Calls `send` with the token the cluster needs ('' for none), again with one if it asks for it. */
  async send<T>(
    clusterId: string,
    abortSignal: AbortSignal | undefined,
    send: (clusterToken: string) => Promise<T>,
  ): Promise<T> {
    const key = clusterId.toLowerCase();
    if (this.always || this.needed.has(key)) return send(await this.token(abortSignal));
    try {
      return await send('');
    } catch (error) {
      if ((error as { code?: unknown } | null)?.code !== 'MissingAADClusterToken') throw error;
      this.needed.add(key);
      return send(await this.token(abortSignal));
    }
  }

  private async token(abortSignal: AbortSignal | undefined): Promise<string> {
    const token = await this.credential.getToken(AKS_AAD_SERVER_SCOPE, { abortSignal });
    return token?.token ?? '';
  }
}

/**
 * The objects `kubectl ... -o json` printed, in order. kubectl prints an object from a line `{` to a
 * line `}`; anything around them (a change's own line, warnings and client-side throttling notes on
 * stderr, which the run command's logs mix in) is skipped.
 */
export function kubectlObjects(logs: string): unknown[] {
  const lines = logs.split('\n').map((l) => l.replace(/\r$/, ''));
  const out: unknown[] = [];
  let start = -1;
  for (const [i, line] of lines.entries()) {
    if (line === '{' && start < 0) start = i;
    else if (line === '}' && start >= 0) {
      try {
        out.push(JSON.parse(lines.slice(start, i + 1).join('\n')));
      } catch {
        // Not an object after all: go on looking.
      }
      start = -1;
    }
  }
  return out;
}

/**
 * kubectl's refusals that come before anything changes and that a retry would meet again: a missing
 * object or resource type, RBAC, validation, an admission webhook's denial, a malformed command.
 * Anything else (the API server unreachable, throttled, timing out, an etcd hiccup) may pass.
 */
const PERMANENT = [
  /Error from server \((NotFound|Forbidden|Invalid|BadRequest|UnsupportedMediaType|MethodNotAllowed|Unauthorized)\)/,
  /admission webhook "[^"]*" denied the request/,
  /the server doesn't have a resource type/,
  /^error: (unknown flag|unknown command|unknown shorthand flag|invalid argument|The --replicas)/m,
  / is invalid: /,
];

/** Whether a failed command's output is a refusal a retry would meet again. */
export function isPermanentKubectlFailure(logs: string): boolean {
  return PERMANENT.some((p) => p.test(logs));
}

/** kubectl's last line, redacted and bounded: what an error may quote. */
export function lastKubectlLine(logs: string): string {
  const last =
    logs
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '')
      .at(-1) ?? '';
  const redacted = redactText(last);
  return redacted.length > 300 ? `${redacted.slice(0, 300)}…` : redacted;
}

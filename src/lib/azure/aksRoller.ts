import { ContainerServiceClient } from '@azure/arm-containerservice';
import type { TokenCredential } from '@azure/core-auth';
import { DependencyError, ValidationError } from '../core/errors';
import { type Clock, systemClock } from '../ports/clock';
import type { Consumer, ConsumerRoller, RollContext, RollHandle, RollStatus } from '../ports/consumers';
import { ClusterTokens, K8S_NAME, K8S_NAMESPACE, lastKubectlLine } from './aksRunCommand';
import {
  type ArmAdapterOptions,
  armClientOptions,
  armError,
  ClientsBySubscription,
  parseArmId,
} from './armKeys';
import { checkHandle, HealthProbe, handleOf, targetOf, verified } from './consumerRollers';

const NAMESPACE = 'Microsoft.ContainerService';
const DEFAULT_TIMEOUT_SECONDS = 600;
const MAX_TIMEOUT_SECONDS = 3600;
/**
 * Rolls a Kubernetes deployment through the AKS run-command API (`@azure/arm-containerservice`):
 * `kubectl rollout restart deployment/<name> -n <ns> && kubectl rollout status deployment/<name>
 * -n <ns> --timeout=<t>s`, run inside the cluster by AKS, so private clusters work without network
 * access to their API server. The command's result is the roll's status: exit 0 is done (then the
 * health check, if any), a non-zero exit is a failure whose reason is kubectl's last line.
 */
export class AksDeploymentRoller implements ConsumerRoller {
  readonly kind = 'aksDeployment' as const;
  private readonly clients: ClientsBySubscription<ContainerServiceClient>;
  private readonly clock: Clock;
  private readonly health: HealthProbe;
  private readonly tokens: ClusterTokens;

  constructor(
    credential: TokenCredential,
    private readonly options: ArmAdapterOptions & {
      /** The platform's clock (handles are dated with it). */
      clock?: Clock;
      /** Plain-HTTP client for health checks (the platform's `webhookClient`). */
      healthClient?: ArmAdapterOptions['httpClient'];
      /**
       * AAD-enabled clusters: pass a token for the AKS AAD server app as `clusterToken`, as
       * `az aks command invoke` does, so kubectl runs as this app's identity (which then needs
       * Kubernetes RBAC to patch the deployment). Default false.
       */
      aadClusterToken?: boolean;
    } = {},
  ) {
    this.clients = new ClientsBySubscription(
      (sub) => new ContainerServiceClient(credential, sub, armClientOptions(options)),
    );
    this.clock = options.clock ?? systemClock;
    this.health = new HealthProbe(options.healthClient);
    this.tokens = new ClusterTokens(credential, options.aadClusterToken === true);
  }

  private target(consumer: Consumer) {
    const target = targetOf(consumer, 'aksDeployment');
    const problems: string[] = [];
    if (!K8S_NAMESPACE.test(target.namespace))
      problems.push(`namespace '${target.namespace}' is not a Kubernetes namespace name`);
    if (!K8S_NAME.test(target.deployment))
      problems.push(`deployment '${target.deployment}' is not a Kubernetes deployment name`);
    const timeout = target.timeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS;
    if (!Number.isInteger(timeout) || timeout < 1 || timeout > MAX_TIMEOUT_SECONDS) {
      problems.push(`timeoutSeconds must be an integer from 1 to ${MAX_TIMEOUT_SECONDS}`);
    }
    if (problems.length > 0) {
      throw new ValidationError(`consumer ${consumer.name}: ${problems.join('; ')}`, problems, {
        metadata: { target: consumer.name },
      });
    }
    const id = parseArmId(target.clusterId, NAMESPACE, [['managedclusters']]);
    return { ...target, id, cluster: id.names[0]!, timeout };
  }

  /**
   * Runs the restart-and-wait command. Needs `Microsoft.ContainerService/managedClusters/runCommand/action`
   * (and, for AAD-enabled clusters, Kubernetes RBAC allowing `patch` on the deployment, e.g. "Azure
   * Kubernetes Service RBAC Writer" on the namespace). One ARM call.
   */
  async start(consumer: Consumer, context: RollContext = {}): Promise<RollHandle> {
    const t = this.target(consumer);
    const command =
      `kubectl rollout restart deployment/${t.deployment} -n ${t.namespace} && ` +
      `kubectl rollout status deployment/${t.deployment} -n ${t.namespace} --timeout=${t.timeout}s`;
    let poller: ReturnType<ContainerServiceClient['managedClusters']['runCommand']>;
    try {
      // Wrapped: the poller is thenable, and an async function would wait for the command to end.
      ({ poller } = await this.tokens.send(t.clusterId, context.abortSignal, async (clusterToken) => {
        const submitted = this.clients.get(t.id.subscriptionId).managedClusters.runCommand(
          t.id.resourceGroup,
          t.cluster,
          { command, context: '', clusterToken },
          {
            abortSignal: context.abortSignal,
            updateIntervalInMs: this.options.pollIntervalMs ?? 2000,
          },
        );
        await submitted.submitted();
        return { poller: submitted };
      }));
    } catch (error) {
      throw armError(
        error,
        `starting the roll of deployment ${t.namespace}/${t.deployment} on AKS cluster ${t.cluster}`,
        t.clusterId,
      );
    }
    // The poller is never awaited: the run keeps the command id and asks for its result later.
    const state = poller.operationState as unknown as {
      config?: { operationLocation?: string };
      result?: { id?: string };
    };
    const commandId =
      /\/commandResults\/([^/?]+)/i.exec(state?.config?.operationLocation ?? '')?.[1] ?? state?.result?.id;
    if (!commandId) {
      throw new DependencyError(
        `AKS cluster ${t.cluster} accepted the run command without naming its result`,
        {
          retryable: false,
          metadata: { target: t.clusterId },
        },
      );
    }
    return handleOf(this.kind, consumer, this.clock, { commandId });
  }

  /**
   * Reads the command's result (`commandResults/{id}`). Needs
   * `Microsoft.ContainerService/managedClusters/commandResults/read`. One ARM call (plus the health
   * check, if any, once the command succeeded).
   */
  async status(consumer: Consumer, handle: RollHandle, context: RollContext = {}): Promise<RollStatus> {
    const t = this.target(consumer);
    checkHandle(handle, this.kind, consumer, ['commandId']);
    let result: Awaited<ReturnType<ContainerServiceClient['managedClusters']['getCommandResult']>>;
    try {
      result = await this.clients
        .get(t.id.subscriptionId)
        .managedClusters.getCommandResult(t.id.resourceGroup, t.cluster, handle.ref.commandId!, {
          abortSignal: context.abortSignal,
        });
    } catch (error) {
      throw armError(
        error,
        `reading the roll of deployment ${t.namespace}/${t.deployment} on AKS cluster ${t.cluster}`,
        t.clusterId,
      );
    }
    if (!result) return { state: 'running', detail: 'kubectl rollout running' };
    const state = result.provisioningState?.toLowerCase();
    if (state === 'failed')
      return {
        state: 'failed',
        reason: `AKS could not run the command: ${result.reason ?? 'no reason given'}`,
      };
    if (state !== 'succeeded')
      return { state: 'running', detail: `command ${result.provisioningState ?? 'pending'}` };
    const lastLine = lastKubectlLine(result.logs ?? '');
    if (result.exitCode !== 0)
      return { state: 'failed', reason: `kubectl exited ${result.exitCode}: ${lastLine}` };
    return verified(this.health, consumer, context, lastLine || 'rolled out');
  }
}

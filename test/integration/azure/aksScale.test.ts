/**
 * The AKS consumer scaler over the real `@azure/arm-containerservice` client, on the sandbox's run
 * command: kubectl get / scale / patch of a deployment and of the KEDA ScaledObject that scales it.
 */
import { describe, expect, it } from 'vitest';
import { AksScaleAdapter } from '../../../src/lib/azure/aksScale';
import { ConfigurationError, DependencyError, ValidationError } from '../../../src/lib/core/errors';
import { createSandbox, type Sandbox } from '../../../src/local/sandbox';

const SUB = '00000000-0000-0000-0000-000000000000';
const CLUSTER = `/subscriptions/${SUB}/resourceGroups/rg-stampkeeper-sandbox/providers/Microsoft.ContainerService/managedClusters/aks-1`;
const PLAIN = { clusterId: CLUSTER, namespace: 'shipping', deployment: 'labels-worker' };
const KEDA = {
  clusterId: CLUSTER,
  namespace: 'shipping',
  deployment: 'shipments-worker',
  scaledObject: 'shipments-worker',
};

function estate() {
  const sandbox = createSandbox({
    scenario: {
      clock: { start: '2026-01-01T00:00:00Z' },
      arm: {
        aksClusters: [
          {
            name: 'aks-1',
            deployments: [
              { namespace: 'shipping', name: 'labels-worker', replicas: 3 },
              {
                namespace: 'shipping',
                name: 'shipments-worker',
                replicas: 2,
                scaledObject: { name: 'shipments-worker', minReplicaCount: 1, maxReplicaCount: 2 },
              },
              {
                namespace: 'shipping',
                name: 'other-worker',
                scaledObject: { name: 'other-worker', minReplicaCount: 3, maxReplicaCount: 5 },
              },
            ],
          },
        ],
      },
    },
  });
  return {
    sandbox,
    aks: new AksScaleAdapter(sandbox.credential, { httpClient: sandbox.httpClient, pollIntervalMs: 0 }),
  };
}

/** The ARM requests since `from`: method and path below the cluster (command ids as {id}). */
const calls = (sandbox: Sandbox, from = 0) =>
  sandbox
    .requests()
    .slice(from)
    .map(
      (r) =>
        `${r.method} ${r.path.replace(/^.*\/managedClusters\/aks-1/i, '').replace(/[0-9a-f]{32}/, '{id}')}`,
    );

const deployment = (sandbox: Sandbox, name: string) =>
  sandbox
    .estate()
    .arm.aksClusters.find((c) => c.name === 'aks-1')!
    .deployments.find((d) => d.name === name)!;

describe('AKS deployment replicas and KEDA max through the run command', () => {
  it("reads a deployment's replicas and a ScaledObject's bounds with one command each", async () => {
    // Prepare
    const { sandbox, aks } = estate();

    // Act
    const plain = await aks.read(PLAIN);
    const afterPlain = sandbox.requests().length;
    const keda = await aks.read(KEDA);

    // Assess
    expect(plain).toEqual({ mode: 'replicas', value: 3, minimum: 0 });
    expect(keda).toEqual({ mode: 'kedaMax', value: 2, minimum: 1 });
    // The command's POST, then its result (one poll: it has ended by then).
    expect(calls(sandbox, afterPlain)).toEqual(['POST /runCommand', 'GET /commandResults/{id}']);
  });

  it('scales the deployment, and raises the ScaledObject max, each change reading back what the cluster holds', async () => {
    // Prepare
    const { sandbox, aks } = estate();

    // Act
    const scaled = await aks.setScale(PLAIN, 5);
    const from = sandbox.requests().length;
    const raised = await aks.setScale(KEDA, 6);

    // Assess
    expect(scaled).toMatchObject({ mode: 'replicas', value: 5 });
    expect(deployment(sandbox, 'labels-worker').replicas).toBe(5);
    expect(raised).toEqual({ mode: 'kedaMax', value: 6, minimum: 1 });
    expect(deployment(sandbox, 'shipments-worker').scaledObject).toEqual({
      name: 'shipments-worker',
      minReplicaCount: 1,
      maxReplicaCount: 6,
    });
    // KEDA owns the replicas: the deployment itself was not scaled.
    expect(deployment(sandbox, 'shipments-worker').replicas).toBe(2);
    expect(calls(sandbox, from)).toEqual(['POST /runCommand', 'GET /commandResults/{id}']);
  });

  it("refuses a ScaledObject that scales another deployment, and passes kubectl's and KEDA's refusals on, unretried", async () => {
    // Prepare
    const { sandbox, aks } = estate();

    // Act
    const wrongTarget = await aks.read({ ...KEDA, scaledObject: 'other-worker' }).catch((e: unknown) => e);
    const missing = await aks.read({ ...PLAIN, deployment: 'nobody' }).catch((e: unknown) => e);
    const belowMin = await aks
      .setScale({ ...KEDA, deployment: 'other-worker', scaledObject: 'other-worker' }, 2)
      .catch((e: unknown) => e);

    // Assess
    expect(wrongTarget).toBeInstanceOf(ConfigurationError);
    expect((wrongTarget as Error).message).toMatch(
      /scales Deployment other-worker, not deployment shipments-worker/,
    );
    expect(missing).toBeInstanceOf(DependencyError);
    expect((missing as DependencyError).retryable).toBe(false);
    expect((missing as Error).message).toMatch(/kubectl exited 1: Error from server \(NotFound\)/);
    // KEDA's admission webhook refuses a max below the min: nothing changed.
    expect(belowMin).toBeInstanceOf(DependencyError);
    expect((belowMin as DependencyError).retryable).toBe(false);
    expect((belowMin as Error).message).toMatch(
      /admission webhook "vscaledobject\.kb\.io" denied the request/,
    );
    expect(deployment(sandbox, 'other-worker').scaledObject?.maxReplicaCount).toBe(5);
    expect(deployment(sandbox, 'labels-worker').replicas).toBe(3);
  });

  it('validates names and values before any call: nothing a shell could read as more than a word', async () => {
    // Prepare
    const { sandbox, aks } = estate();

    // Act
    const errors = await Promise.all([
      aks.read({ ...PLAIN, deployment: 'x; kubectl delete ns shipping' }).catch((e: unknown) => e),
      aks.read({ ...PLAIN, namespace: '$(id)' }).catch((e: unknown) => e),
      aks.read({ ...KEDA, scaledObject: "a'b" }).catch((e: unknown) => e),
      aks.setScale(PLAIN, 1001).catch((e: unknown) => e),
      aks.setScale(KEDA, 0).catch((e: unknown) => e),
      aks.setScale(PLAIN, 2.5).catch((e: unknown) => e),
    ]);

    // Assess
    for (const e of errors) expect(e).toBeInstanceOf(ValidationError);
    expect(sandbox.requests()).toEqual([]);
  });
});

/**
 * The AKS consumer scaler over the real `@azure/arm-containerservice` client, on the sandbox's run
 * command: kubectl get / scale / patch of a deployment and of the KEDA ScaledObject that scales it.
 */
import type { HttpClient } from '@azure/core-rest-pipeline';
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

/**
 * The sandbox's estate, and the adapter over its transport; `answer` may rewrite a command's result
 * (its JSON body) as AKS could send it, to see how the adapter reads what the sandbox never says.
 */
function estate(
  o: { aad?: boolean; answer?: (result: Record<string, unknown>) => Record<string, unknown> } = {},
) {
  const sandbox = createSandbox({
    scenario: {
      clock: { start: '2026-01-01T00:00:00Z' },
      arm: {
        aksClusters: [
          {
            name: 'aks-1',
            aad: o.aad === true,
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
  const httpClient: HttpClient = {
    async sendRequest(request) {
      const response = await sandbox.httpClient.sendRequest(request);
      if (!o.answer || response.status !== 200 || !/\/commandResults\//i.test(request.url)) return response;
      const body = JSON.parse(response.bodyAsText ?? '{}') as { properties: Record<string, unknown> };
      return { ...response, bodyAsText: JSON.stringify({ ...body, properties: o.answer(body.properties) }) };
    },
  };
  return { sandbox, aks: new AksScaleAdapter(sandbox.credential, { httpClient, pollIntervalMs: 0 }) };
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

  it('refuses to scale the replicas of a deployment an autoscaler owns (KEDA would undo it), naming the autoscaler', async () => {
    // Prepare
    const { sandbox, aks } = estate();

    // Act
    const refused = await aks
      .read({ clusterId: CLUSTER, namespace: 'shipping', deployment: 'shipments-worker' })
      .catch((e: unknown) => e);

    // Assess
    expect(refused).toBeInstanceOf(ConfigurationError);
    expect((refused as Error).message).toMatch(
      /scaled by the HorizontalPodAutoscaler keda-hpa-shipments-worker.*name its KEDA ScaledObject/,
    );
    expect(deployment(sandbox, 'shipments-worker').replicas).toBe(2);
  });

  it("sends an Entra-enabled cluster the app's token once it refuses a command without one", async () => {
    // Prepare: AKS answers 400 MissingAADClusterToken to a command without a token.
    const { sandbox, aks } = estate({ aad: true });

    // Act
    const first = await aks.read(KEDA);
    const from = sandbox.requests().length;
    const raised = await aks.setScale(KEDA, 4);

    // Assess
    expect(first).toEqual({ mode: 'kedaMax', value: 2, minimum: 1 });
    expect(raised.value).toBe(4);
    expect(
      sandbox
        .requests()
        .slice(0, from)
        .map((r) => `${r.method} ${r.status}`),
    ).toEqual(['POST 400', 'POST 202', 'GET 200']);
    // Remembered: the next command carries the token at once.
    expect(calls(sandbox, from)).toEqual(['POST /runCommand', 'GET /commandResults/{id}']);
  });

  it('retries what may pass (AKS not running the command, the API server unreachable, a change already made), not what never will', async () => {
    // Prepare: results AKS and kubectl can give that the sandbox never does.
    const failing = (logs: string, exitCode: number | undefined = 1, provisioningState = 'succeeded') =>
      estate({ answer: (p) => ({ ...p, provisioningState, logs, exitCode }) }).aks;
    const retryable = async (p: Promise<unknown>) => {
      const e = await p.then(
        () => undefined,
        (x: unknown) => x,
      );
      expect(e).toBeInstanceOf(DependencyError);
      return (e as DependencyError).retryable;
    };

    // Act
    const outcomes = {
      scaledThenUnavailable: await retryable(
        failing(
          'deployment.apps/labels-worker scaled\nError from server (ServiceUnavailable): the server is currently unable to handle the request',
        ).setScale(PLAIN, 5),
      ),
      // The change was made; only the read-back was refused: retried, so the run re-reads and records it.
      patchedThenForbidden: await retryable(
        failing(
          'scaledobject.keda.sh/shipments-worker patched\nError from server (Forbidden): scaledobjects.keda.sh "shipments-worker" is forbidden: User "app" cannot get resource "scaledobjects"',
        ).setScale(KEDA, 4),
      ),
      unreachable: await retryable(
        failing('Unable to connect to the server: net/http: TLS handshake timeout').read(KEDA),
      ),
      notRun: await retryable(failing('', undefined, 'failed').read(KEDA)),
      canceled: await retryable(failing('', undefined, 'canceled').read(KEDA)),
      forbidden: await retryable(
        failing(
          'Error from server (Forbidden): scaledobjects.keda.sh "shipments-worker" is forbidden: User "app" cannot get resource "scaledobjects"',
        ).read(KEDA),
      ),
      denied: await retryable(
        failing(
          'Error from server (Forbidden): admission webhook "vscaledobject.kb.io" denied the request: MinReplicaCount=3 must be less than MaxReplicaCount=2',
        ).setScale(KEDA, 2),
      ),
    };
    // A throttling note kubectl wrote to stderr after the object does not hide the object.
    const noisy = await estate({
      answer: (p) => ({
        ...p,
        logs: `${p.logs}\nI1130 12:00:00.000000 1 request.go:697] Waited for 1.03s due to client-side throttling`,
      }),
    }).aks.read(KEDA);

    // Assess
    expect(outcomes).toEqual({
      scaledThenUnavailable: true,
      patchedThenForbidden: true,
      unreachable: true,
      notRun: true,
      canceled: true,
      forbidden: false,
      denied: false,
    });
    expect(noisy).toEqual({ mode: 'kedaMax', value: 2, minimum: 1 });
  });

  it('validates names and values before any call: nothing a shell could read as more than a word', async () => {
    // Prepare
    const { sandbox, aks } = estate();

    // Act
    const errors = await Promise.all([
      aks.read({ ...PLAIN, deployment: 'x; kubectl delete ns shipping' }).catch((e: unknown) => e),
      aks.read({ ...PLAIN, namespace: '$(id)' }).catch((e: unknown) => e),
      aks.read({ ...KEDA, scaledObject: "a'b" }).catch((e: unknown) => e),
      aks.read({ ...KEDA, scaledObject: 'a..b' }).catch((e: unknown) => e),
      aks.setScale(PLAIN, 1001).catch((e: unknown) => e),
      aks.setScale(KEDA, 0).catch((e: unknown) => e),
      aks.setScale(PLAIN, 2.5).catch((e: unknown) => e),
    ]);

    // Assess
    for (const e of errors) expect(e).toBeInstanceOf(ValidationError);
    expect(sandbox.requests()).toEqual([]);
  });
});

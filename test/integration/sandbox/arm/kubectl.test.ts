/**
 * The sandbox's AKS run command on deployments and KEDA ScaledObjects, through the real
 * `@azure/arm-containerservice` client: `kubectl get -o json`, `kubectl scale`, `kubectl patch
 * --type=merge`, their errors as kubectl, the API server and KEDA's webhook word them, and the
 * scenario's `deployments` with `replicas` and `scaledObject`.
 */
import { ContainerServiceClient } from '@azure/arm-containerservice';
import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../../../src/lib/core/errors';
import type { Sandbox, Scenario } from '../../../../src/local/sandbox';
import { armSandbox, RG, SUB } from './support';

const CLUSTER = 'aks-kube';

/** A cluster with a KEDA-scaled deployment, a plain one, and a deployment known only as a consumer. */
function kube(extra: Partial<Scenario> = {}): Sandbox {
  return armSandbox({
    keyVault: {
      vaults: [
        {
          name: 'kv-kube',
          secrets: [
            { name: 'cosmos-key', valueFrom: { resource: 'cosmosDb/cosmos-kube', key: 'primaryMasterKey' } },
          ],
        },
      ],
    },
    arm: {
      cosmosDbAccounts: [{ name: 'cosmos-kube' }],
      aksClusters: [
        {
          name: CLUSTER,
          deployments: [
            {
              namespace: 'shipping',
              name: 'shipments-worker',
              replicas: 2,
              scaledObject: { minReplicaCount: 1, maxReplicaCount: 2 },
            },
            { namespace: 'ops', name: 'reporter', replicas: 3 },
          ],
        },
        { name: 'aks-nokeda', deployments: [{ namespace: 'ops', name: 'plain' }] },
      ],
    },
    consumers: [
      {
        name: 'orders-api',
        kind: 'aksDeployment',
        cluster: CLUSTER,
        namespace: 'orders',
        deployment: 'orders-api',
        credential: { vault: 'kv-kube', secret: 'cosmos-key', resource: 'cosmosDb/cosmos-kube' },
        roll: { seconds: 30 },
      },
    ],
    ...extra,
  } as Partial<Scenario>);
}

async function kubectl(box: Sandbox, command: string, cluster = CLUSTER) {
  const client = new ContainerServiceClient(box.credential, SUB, { httpClient: box.httpClient });
  const result = await client.managedClusters.beginRunCommandAndWait(
    RG,
    cluster,
    { command },
    { updateIntervalInMs: 0 },
  );
  return { exitCode: result.exitCode, logs: result.logs ?? '' };
}

// biome-ignore lint/suspicious/noExplicitAny: a kubectl object read field by field in assertions
type Json = Record<string, any>;

/** The JSON object printed after the first `lines` lines of a command's logs. */
const jsonAfter = (logs: string, lines: number) =>
  JSON.parse(logs.split('\n').slice(lines).join('\n')) as Json;

const deploymentsOf = (box: Sandbox, cluster = CLUSTER) =>
  box.estate().arm.aksClusters.find((c) => c.name === cluster)!.deployments;

describe('sandbox AKS kubectl get', () => {
  it('prints a deployment as kubectl -o json does: apps/v1, sorted keys, 4-space indent, status caught up', async () => {
    // Prepare
    const box = kube();

    // Act
    const scaled = await kubectl(box, 'kubectl get deployment/shipments-worker -n shipping -o json');
    const consumer = await kubectl(box, 'kubectl get deployments orders-api --namespace=orders -ojson');

    // Assess
    expect(scaled.exitCode).toBe(0);
    expect(
      scaled.logs.startsWith(
        '{\n    "apiVersion": "apps/v1",\n    "kind": "Deployment",\n    "metadata": {\n',
      ),
    ).toBe(true);
    const d = jsonAfter(scaled.logs, 0);
    expect(Object.keys(d)).toEqual(['apiVersion', 'kind', 'metadata', 'spec', 'status']);
    expect(Object.keys(d.metadata)).toEqual([...Object.keys(d.metadata)].sort());
    expect(d.metadata).toMatchObject({
      name: 'shipments-worker',
      namespace: 'shipping',
      generation: 1,
      creationTimestamp: '2026-01-01T00:00:00Z',
      uid: expect.stringMatching(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/),
    });
    expect(d.spec.replicas).toBe(2);
    expect(d.status).toMatchObject({
      observedGeneration: 1,
      replicas: 2,
      readyReplicas: 2,
      updatedReplicas: 2,
      availableReplicas: 2,
    });
    // A deployment that exists only as a rotation consumer: one replica.
    expect(consumer.exitCode).toBe(0);
    expect(jsonAfter(consumer.logs, 0).spec.replicas).toBe(1);
  });

  it('prints a ScaledObject as keda.sh/v1alpha1 with its bounds, trigger, conditions and HPA, in every spelling', async () => {
    // Prepare
    const box = kube();

    // Act
    const outputs = await Promise.all(
      [
        'kubectl get scaledobject/shipments-worker -n shipping -o json',
        'kubectl get so shipments-worker -n shipping -o json',
        'kubectl get scaledobjects/shipments-worker -n shipping --output=json',
        'kubectl get scaledobject.keda.sh shipments-worker -n shipping -o json',
      ].map((command) => kubectl(box, command)),
    );

    // Assess
    for (const out of outputs) expect(out).toEqual(outputs[0]);
    expect(outputs[0]!.exitCode).toBe(0);
    const so = jsonAfter(outputs[0]!.logs, 0);
    expect(so).toMatchObject({
      apiVersion: 'keda.sh/v1alpha1',
      kind: 'ScaledObject',
      metadata: { name: 'shipments-worker', namespace: 'shipping', generation: 1 },
      spec: {
        scaleTargetRef: { name: 'shipments-worker' },
        minReplicaCount: 1,
        maxReplicaCount: 2,
        triggers: [{ type: 'azure-servicebus' }],
      },
      status: { hpaName: 'keda-hpa-shipments-worker' },
    });
    expect(so.status.conditions).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ type: 'Ready', status: 'True' }),
        expect.objectContaining({ type: 'Active', status: 'True' }),
      ]),
    );
  });

  it("answers kubectl's errors: unknown objects, KEDA not installed, other output formats", async () => {
    // Prepare
    const box = kube();

    // Act
    const missing = await kubectl(box, 'kubectl get deployment/nope -n shipping -o json');
    const missingSo = await kubectl(box, 'kubectl get scaledobject/reporter -n ops -o json');
    const noKeda = await kubectl(box, 'kubectl get scaledobject/plain -n ops -o json', 'aks-nokeda');
    const noKedaShort = await kubectl(box, 'kubectl get so plain -n ops -o json', 'aks-nokeda');
    const yaml = await kubectl(box, 'kubectl get deployment/reporter -n ops -o yaml');
    const xml = await kubectl(box, 'kubectl get deployment/reporter -n ops -o xml');
    const table = await kubectl(box, 'kubectl get deployment/reporter -n ops');

    // Assess
    expect(missing).toEqual({
      exitCode: 1,
      logs: 'Error from server (NotFound): deployments.apps "nope" not found',
    });
    expect(missingSo).toEqual({
      exitCode: 1,
      logs: 'Error from server (NotFound): scaledobjects.keda.sh "reporter" not found',
    });
    expect(noKeda).toEqual({
      exitCode: 1,
      logs: `error: the server doesn't have a resource type "scaledobject"`,
    });
    expect(noKedaShort.logs).toBe(`error: the server doesn't have a resource type "so"`);
    expect(yaml).toEqual({ exitCode: 1, logs: expect.stringMatching(/^sandbox: .*-o yaml is not emulated/) });
    expect(xml.exitCode).toBe(1);
    expect(xml.logs).toMatch(
      /^error: unable to match a printer suitable for the output format "xml", allowed formats are: .*json/,
    );
    expect(table).toEqual({ exitCode: 1, logs: expect.stringMatching(/^sandbox: .*not emulated/) });
  });
});

describe('sandbox AKS kubectl scale', () => {
  it('sets spec.replicas, bumps the generation, and the status and estate follow at once', async () => {
    // Prepare
    const box = kube();

    // Act
    const out = await kubectl(
      box,
      'kubectl scale deployment/reporter -n ops --replicas=5 && kubectl get deployment/reporter -n ops -o json',
    );
    const same = await kubectl(
      box,
      'kubectl scale deployments reporter -n ops --replicas 5 && kubectl get deploy/reporter -n ops -o json',
    );
    const zero = await kubectl(
      box,
      'kubectl scale deployment.apps/reporter -n ops --replicas=0 && kubectl get deployment/reporter -n ops -o json',
    );

    // Assess
    expect(out.exitCode).toBe(0);
    expect(out.logs.split('\n')[0]).toBe('deployment.apps/reporter scaled');
    const after = jsonAfter(out.logs, 1);
    expect(after.spec.replicas).toBe(5);
    expect(after.metadata.generation).toBe(2);
    expect(after.status).toMatchObject({ observedGeneration: 2, replicas: 5, readyReplicas: 5 });
    // The same count again: scaled, but the spec did not change.
    expect(same.logs.split('\n')[0]).toBe('deployment.apps/reporter scaled');
    expect(jsonAfter(same.logs, 1).metadata.generation).toBe(2);
    // Zero replicas: the API leaves the zero counts out of the status.
    const none = jsonAfter(zero.logs, 1);
    expect(none.spec.replicas).toBe(0);
    expect(none.status).not.toHaveProperty('replicas');
    expect(none.status).not.toHaveProperty('readyReplicas');
    expect(none.status.observedGeneration).toBe(3);
    expect(deploymentsOf(box)).toContainEqual({
      namespace: 'ops',
      name: 'reporter',
      replicas: 0,
      scaledObject: null,
    });
  });

  it("refuses bad --replicas with kubectl's words and an unknown deployment with the server's, changing nothing", async () => {
    // Prepare
    const box = kube();
    const before = deploymentsOf(box);

    // Act
    const missing = await kubectl(box, 'kubectl scale deployment/reporter -n ops');
    const negative = await kubectl(box, 'kubectl scale deployment/reporter -n ops --replicas=-1');
    const text = await kubectl(box, 'kubectl scale deployment/reporter -n ops --replicas=many');
    const fraction = await kubectl(box, 'kubectl scale deployment/reporter -n ops --replicas=2.5');
    const unknown = await kubectl(
      box,
      'kubectl scale deployment/nope -n ops --replicas=2 && kubectl get deployment/reporter -n ops -o json',
    );
    const wrongFlag = await kubectl(box, 'kubectl get deployment/reporter -n ops --replicas=2 -o json');

    // Assess
    const required =
      'error: The --replicas=COUNT flag is required, and COUNT must be greater than or equal to 0';
    expect(missing).toEqual({ exitCode: 1, logs: required });
    expect(negative).toEqual({ exitCode: 1, logs: required });
    expect(text).toEqual({
      exitCode: 1,
      logs: 'error: invalid argument "many" for "--replicas" flag: strconv.ParseInt: parsing "many": invalid syntax',
    });
    expect(fraction.logs).toBe(
      'error: invalid argument "2.5" for "--replicas" flag: strconv.ParseInt: parsing "2.5": invalid syntax',
    );
    // `&&`: the get after a failed scale does not run.
    expect(unknown).toEqual({
      exitCode: 1,
      logs: 'Error from server (NotFound): deployments.apps "nope" not found',
    });
    expect(wrongFlag).toEqual({ exitCode: 1, logs: 'error: unknown flag: --replicas' });
    expect(deploymentsOf(box)).toEqual(before);
  });
});

describe('sandbox AKS kubectl patch of a ScaledObject', () => {
  it('sets maxReplicaCount by merge patch, then says (no change) for the same patch', async () => {
    // Prepare
    const box = kube();
    const patch = `kubectl patch scaledobject/shipments-worker -n shipping --type=merge -p '{"spec":{"maxReplicaCount":4}}'`;

    // Act
    const out = await kubectl(
      box,
      `${patch} && kubectl get scaledobject/shipments-worker -n shipping -o json`,
    );
    const again = await kubectl(
      box,
      `kubectl patch so shipments-worker -n shipping --type merge -p='{"spec":{"maxReplicaCount":4}}' && kubectl get so/shipments-worker -n shipping -o json`,
    );

    // Assess
    expect(out.exitCode).toBe(0);
    expect(out.logs.split('\n')[0]).toBe('scaledobject.keda.sh/shipments-worker patched');
    expect(jsonAfter(out.logs, 1)).toMatchObject({
      metadata: { generation: 2 },
      spec: { minReplicaCount: 1, maxReplicaCount: 4 },
    });
    expect(again.logs.split('\n')[0]).toBe('scaledobject.keda.sh/shipments-worker patched (no change)');
    expect(jsonAfter(again.logs, 1).metadata.generation).toBe(2);
    expect(deploymentsOf(box)).toContainEqual({
      namespace: 'shipping',
      name: 'shipments-worker',
      replicas: 2,
      scaledObject: { name: 'shipments-worker', minReplicaCount: 1, maxReplicaCount: 4 },
    });
  });

  it("refuses min > max and a negative max as KEDA's webhook does, and what is not emulated, changing nothing", async () => {
    // Prepare
    const box = kube();
    const before = deploymentsOf(box);
    const patch = (body: string, type = '--type=merge') =>
      kubectl(box, `kubectl patch scaledobject/shipments-worker -n shipping ${type} -p '${body}'`);

    // Act
    const lowered = await patch('{"spec":{"maxReplicaCount":0}}');
    const negative = await patch('{"spec":{"maxReplicaCount":-2}}');
    const raisedMin = await patch('{"spec":{"minReplicaCount":3}}');
    const other = await patch('{"spec":{"pollingInterval":5}}');
    const meta = await patch('{"metadata":{"labels":{"a":"b"}}}');
    const text = await patch('{"spec":{"maxReplicaCount":"4"}}');
    const strategic = await patch('{"spec":{"maxReplicaCount":4}}', '');
    const notJson = await patch('spec: [');
    const noPatch = await kubectl(
      box,
      'kubectl patch scaledobject/shipments-worker -n shipping --type=merge',
    );
    const unknown = await kubectl(
      box,
      `kubectl patch scaledobject/nope -n shipping --type=merge -p '{"spec":{"maxReplicaCount":4}}'`,
    );
    const noKeda = await kubectl(
      box,
      `kubectl patch scaledobject/plain -n ops --type=merge -p '{"spec":{"maxReplicaCount":4}}'`,
      'aks-nokeda',
    );

    // Assess
    const denied =
      'Error from server (Forbidden): admission webhook "vscaledobject.kb.io" denied the request: ';
    expect(lowered).toEqual({
      exitCode: 1,
      logs: `${denied}MinReplicaCount=1 must be less than MaxReplicaCount=0`,
    });
    expect(negative).toEqual({
      exitCode: 1,
      logs: `${denied}MinReplicaCount=1 must be less than MaxReplicaCount=-2`,
    });
    expect(raisedMin).toEqual({
      exitCode: 1,
      logs: `${denied}MinReplicaCount=3 must be less than MaxReplicaCount=2`,
    });
    expect(other).toEqual({
      exitCode: 1,
      logs: expect.stringMatching(/^sandbox: .*spec\.pollingInterval is not emulated/),
    });
    expect(meta).toEqual({
      exitCode: 1,
      logs: expect.stringMatching(/^sandbox: .*metadata is not emulated/),
    });
    expect(text).toEqual({
      exitCode: 1,
      logs: 'The ScaledObject "shipments-worker" is invalid: spec.maxReplicaCount: Invalid value: "string": spec.maxReplicaCount in body must be of type integer: "string"',
    });
    expect(strategic.exitCode).toBe(1);
    expect(strategic.logs).toMatch(/^Error from server \(UnsupportedMediaType\): /);
    expect(notJson).toEqual({
      exitCode: 1,
      logs: expect.stringMatching(/^error: unable to parse "spec: \[": /),
    });
    expect(noPatch).toEqual({
      exitCode: 1,
      logs: 'error: must specify --patch or --patch-file containing the contents of the patch',
    });
    expect(unknown).toEqual({
      exitCode: 1,
      logs: 'Error from server (NotFound): scaledobjects.keda.sh "nope" not found',
    });
    expect(noKeda).toEqual({
      exitCode: 1,
      logs: `error: the server doesn't have a resource type "scaledobject"`,
    });
    expect(deploymentsOf(box)).toEqual(before);
  });

  it('keeps rollout restart and status working, and a restart is a new generation of the deployment', async () => {
    // Prepare
    const box = kube();

    // Act
    const out = await kubectl(
      box,
      'kubectl rollout restart deployment/reporter -n ops && kubectl rollout status deployment/reporter -n ops --timeout=60s && kubectl get deployment/reporter -n ops -o json',
    );

    // Assess
    expect(out.exitCode).toBe(0);
    const lines = out.logs.split('\n');
    expect(lines.slice(0, 2)).toEqual([
      'deployment.apps/reporter restarted',
      'deployment "reporter" successfully rolled out',
    ]);
    const d = jsonAfter(out.logs, 2);
    expect(d.metadata.generation).toBe(2);
    expect(d.metadata.annotations['deployment.kubernetes.io/revision']).toBe('2');
    expect(d.spec.template.metadata.annotations['kubectl.kubernetes.io/restartedAt']).toBe(
      '2026-01-01T00:00:00Z',
    );
  });
});

describe('sandbox scenario: deployments with replicas and a ScaledObject', () => {
  it("shows each cluster's deployments with replicas and ScaledObject bounds (KEDA's defaults 0 and 100)", () => {
    // Prepare
    const box = kube({
      arm: {
        aksClusters: [
          {
            name: CLUSTER,
            deployments: [
              { namespace: 'shipping', name: 'shipments-worker', scaledObject: {} },
              {
                namespace: 'shipping',
                name: 'labels',
                scaledObject: { name: 'labels-so', maxReplicaCount: 8 },
              },
            ],
          },
        ],
        cosmosDbAccounts: [{ name: 'cosmos-kube' }],
      },
    } as Partial<Scenario>);

    // Act
    const deployments = deploymentsOf(box);

    // Assess
    expect(deployments).toEqual([
      { namespace: 'orders', name: 'orders-api', replicas: 1, scaledObject: null },
      {
        namespace: 'shipping',
        name: 'labels',
        replicas: 1,
        scaledObject: { name: 'labels-so', minReplicaCount: 0, maxReplicaCount: 8 },
      },
      {
        namespace: 'shipping',
        name: 'shipments-worker',
        replicas: 1,
        scaledObject: { name: 'shipments-worker', minReplicaCount: 0, maxReplicaCount: 100 },
      },
    ]);
  });

  it('refuses bad deployments with every problem and its path', () => {
    // Act
    let error: unknown;
    try {
      armSandbox({
        arm: {
          aksClusters: [
            {
              name: CLUSTER,
              deployments: [
                { namespace: 'ops', name: 'a', replicas: 1001 },
                { namespace: 'ops', name: 'a', replicas: 1.5 },
                { namespace: 'ops', name: 'b', scaledObject: { minReplicaCount: 3, maxReplicaCount: 2 } },
                { namespace: 'ops', name: 'c', scaledObject: { max: 2 } },
                { namespace: 'ops', name: 'd', scaledObject: { name: 'Bad_Name', maxReplicaCount: -1 } },
                { namespace: 'ops', name: 'e', scaledObject: { name: 'c' } },
                { namespace: 'ops', name: 'f', replicas: 2, scale: 3 },
              ],
            },
          ],
        },
      } as Partial<Scenario>);
    } catch (e) {
      error = e;
    }

    // Assess
    expect(error).toBeInstanceOf(ValidationError);
    const p = 'arm.aksClusters[0].deployments';
    expect((error as ValidationError).problems).toEqual(
      expect.arrayContaining([
        `${p}[0].replicas: must be an integer from 0 to 1000`,
        `${p}[1].replicas: must be an integer from 0 to 1000`,
        `${p}[1]: deployment ops/a is already listed at ${p}[0]`,
        `${p}[2].scaledObject: MinReplicaCount=3 must be less than MaxReplicaCount=2 (KEDA's admission webhook refuses it)`,
        expect.stringMatching(/^arm\.aksClusters\[0\]\.deployments\[3\]\.scaledObject\.max: unknown key/),
        expect.stringMatching(
          /^arm\.aksClusters\[0\]\.deployments\[4\]\.scaledObject\.name: 'Bad_Name' is not a valid name/,
        ),
        `${p}[4].scaledObject.maxReplicaCount: must be an integer from 0 to 1000`,
        `${p}[5].scaledObject.name: ScaledObject ops/c is already used at ${p}[3].scaledObject`,
        expect.stringMatching(/^arm\.aksClusters\[0\]\.deployments\[6\]\.scale: unknown key/),
      ]),
    );
  });
});

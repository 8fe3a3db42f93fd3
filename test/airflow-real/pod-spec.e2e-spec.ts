import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Preset } from '../../src/automl-training/domain/automl-training.enums';
import { DagRenderer } from '../../src/automl-training/dag/dag-renderer';
import { loadAppConfig } from '../../src/config/app.config';
import { dagJob, writeTrainingRuntime } from '../utils/dag-python';
import { airflowVenv } from '../utils/real-airflow';
import { ROOT } from '../utils/service-main';
import { TEST_PSK } from '../utils/test-app';

/** The Kubernetes version the pod must be valid for (its schemas are bundled in kubernetes-validate). */
const KUBERNETES_VERSION = '1.33.0';
const VALIDATE_LOCK = join(ROOT, 'test', 'utils', 'python', 'kubernetes-validate.lock');
const SECRET = 'automl-trainer-credentials';
const POD_ENV = {
  TRAINING_IMAGE: 'registry.example/automl-trainer:1',
  TRAINING_POD_NAMESPACE: 'automl',
  TRAINING_POD_SERVICE_ACCOUNT: 'automl-trainer',
  TRAINING_POD_SECRET: SECRET,
  TRAINING_POOL: 'automl_training',
  TRAINING_QUEUE_BY_PRESET: 'best_quality=train-large',
};

/** Validates manifests (JSON on stdin) with kubernetes-validate, strict; answers each one's error or null. */
const VALIDATE = String.raw`
import json, sys
import kubernetes_validate
out = []
for manifest in json.load(sys.stdin)["manifests"]:
    try:
        kubernetes_validate.validate(manifest, sys.argv[1], strict=True)
        out.append(None)
    except kubernetes_validate.ValidationError as error:
        out.append(f"{'.'.join(str(p) for p in error.path)}: {error.message}")
print(json.dumps(out))
`;

interface BuiltPod {
  manifest: any;
  operator: string;
  on_finish_action: string;
  do_xcom_push: boolean;
  execution_timeout_seconds: number;
  pool: string;
  queue: string;
}

/**
 * The container path built into a real pod: the rendered DAG's `train` task goes through the cncf.kubernetes
 * provider of the Airflow lock (KubernetesPodOperator.build_pod_request_obj(dry_run=True), what dry_run() prints;
 * no cluster), and the manifest is validated offline against a pinned Kubernetes version's schema, strictly (no
 * unknown field). It needs no running Airflow: it lives in this project for the Airflow venv.
 */
describe('the training pod built by the real KubernetesPodOperator', () => {
  const dir = mkdtempSync(join(tmpdir(), 'automl-pod-spec-'));
  const renderer = new DagRenderer(
    loadAppConfig({ NODE_ENV: 'test', API_PSK: TEST_PSK, DATABASE_URL: 'pglite://memory', ...POD_ENV }),
  );
  writeTrainingRuntime(dir);

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  function buildPod(preset: Preset): BuiltPod {
    const rendered = renderer.render(dagJob({ preset }));
    const path = join(dir, `${rendered.dagId}.py`);
    writeFileSync(path, rendered.source);
    const venv = airflowVenv();
    const out = execFileSync(
      join(venv, 'bin', 'python'),
      [join(ROOT, 'test', 'utils', 'python', 'pod_spec.py'), path],
      {
        // No cluster, no kube config, no metadata database: an Airflow home of its own.
        env: {
          PATH: process.env.PATH ?? '/usr/bin:/bin',
          HOME: dir,
          AIRFLOW_HOME: join(dir, 'airflow'),
          LANG: 'C.UTF-8',
        },
        encoding: 'utf8',
        timeout: 120_000,
      },
    );
    return JSON.parse(out.trim().split('\n').pop() as string) as BuiltPod;
  }

  function validate(manifests: unknown[]): (string | null)[] {
    const venv = execFileSync(join(ROOT, 'scripts', 'pyenv.sh'), ['kubernetes-validate', VALIDATE_LOCK], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    }).trim();
    return JSON.parse(
      execFileSync(join(venv, 'bin', 'python'), ['-c', VALIDATE, KUBERNETES_VERSION], {
        input: JSON.stringify({ manifests }),
        encoding: 'utf8',
      }),
    );
  }

  const pods: Partial<Record<Preset, BuiltPod>> = {};
  beforeAll(() => {
    for (const preset of [Preset.Fast, Preset.BestQuality]) pods[preset] = buildPod(preset);
  }, 300_000);

  it(`should be a valid Pod for Kubernetes ${KUBERNETES_VERSION} (strict), and the validator should refuse an unknown field`, () => {
    const manifests = Object.values(pods).map((pod) => pod.manifest);
    expect(validate(manifests)).toEqual(manifests.map(() => null));
    const broken = structuredClone(manifests[0]);
    broken.spec.containers[0].memoryLimit = '4Gi';
    expect(validate([broken])[0]).toMatch(/memoryLimit/);
  });

  it('should run in the configured namespace and service account, read its result back and be removed when done', () => {
    const pod = pods[Preset.Fast] as BuiltPod;
    expect(pod).toMatchObject({ operator: 'TrainingPodOperator', on_finish_action: 'delete_pod', do_xcom_push: true });
    const { metadata, spec } = pod.manifest;
    expect(metadata.namespace).toBe('automl');
    expect(spec).toMatchObject({ serviceAccountName: 'automl-trainer', restartPolicy: 'Never' });
    const [base, sidecar] = spec.containers;
    expect(base).toMatchObject({ name: 'base', image: 'registry.example/automl-trainer:1' });
    // The trainer writes its result where the provider's XCom sidecar reads it back.
    expect(sidecar.name).toBe('airflow-xcom-sidecar');
    expect(base.env).toContainEqual({ name: 'AUTOML_RESULT_PATH', value: '/airflow/xcom/return.json' });
    expect(base.volumeMounts).toContainEqual(expect.objectContaining({ mountPath: '/airflow/xcom' }));
  });

  it('should request and limit resources by the preset, and take the pool, the preset’s queue and the bounded timeout', () => {
    const fast = pods[Preset.Fast] as BuiltPod;
    const best = pods[Preset.BestQuality] as BuiltPod;
    expect(fast.manifest.spec.containers[0].resources).toEqual({
      requests: { cpu: '1', memory: '2Gi' },
      limits: { memory: '4Gi' },
    });
    expect(best.manifest.spec.containers[0].resources).toEqual({
      requests: { cpu: '4', memory: '8Gi' },
      limits: { memory: '16Gi' },
    });
    expect([fast.pool, fast.queue]).toEqual(['automl_training', 'default']);
    expect([best.pool, best.queue]).toEqual(['automl_training', 'train-large']);
    expect(fast.execution_timeout_seconds).toBe((10 + 30) * 60);
    expect(best.execution_timeout_seconds).toBe((180 + 30) * 60);
  });

  it('should hold no secret as a value: the trainer’s credentials come from the Secret by secretKeyRef', () => {
    const env: { name: string; value?: string; valueFrom?: unknown }[] =
      pods[Preset.Fast]?.manifest.spec.containers[0].env;
    expect(env.filter((entry) => entry.value !== undefined).map((entry) => entry.name)).toEqual([
      'AUTOML_JOB_SPEC_GZ_B64',
      'AUTOML_RESULT_PATH',
    ]);
    const referenced = env.filter((entry) => entry.valueFrom !== undefined);
    expect(referenced).toEqual(
      ['AUTOML_SOURCE_URL', 'MLFLOW_TRACKING_URI', 'MLFLOW_TRACKING_USERNAME', 'MLFLOW_TRACKING_PASSWORD'].map(
        (name) => ({ name, valueFrom: { secretKeyRef: { name: SECRET, key: name } } }),
      ),
    );
  });
});

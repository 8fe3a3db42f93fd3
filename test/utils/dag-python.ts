import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AutoMLAlgorithm, Preset, ProblemType } from '../../src/automl-training/domain/automl-training.enums';
import { DagJob, trainingRuntime } from '../../src/automl-training/dag/dag-renderer';

/** Writes the runtime module rendered DAGs import into `dir`, as the service does in its DAG folder. */
export function writeTrainingRuntime(dir: string): void {
  const runtime = trainingRuntime();
  writeFileSync(join(dir, runtime.fileName), runtime.source);
}

/**
 * Python-side checks of a rendered DAG: it parses; JOB_SPEC decodes to the
 * given values; no token outside string literals and comments carries any
 * payload fragment; no call to __import__/eval/exec/system exists.
 */
const INSPECT = String.raw`
import ast, io, json, sys, tokenize
cases = json.load(sys.stdin)
out = []
for case in cases:
    source = case["source"]
    tree = ast.parse(source)
    spec = None
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "JOB_SPEC" for t in node.targets):
            spec = json.loads(node.value.args[0].value)
    code_tokens = [t.string for t in tokenize.generate_tokens(io.StringIO(source).readline)
                   if t.type not in (tokenize.STRING, tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER)
                   and not (hasattr(tokenize, "FSTRING_MIDDLE") and t.type == tokenize.FSTRING_MIDDLE)]
    leaked = sorted({f for f in case["fragments"] for tok in code_tokens if f in tok})
    dangerous = sorted({n.func.id if isinstance(n.func, ast.Name) else n.func.attr for n in ast.walk(tree)
                        if isinstance(n, ast.Call) and ((isinstance(n.func, ast.Name) and n.func.id in ("__import__", "eval", "exec"))
                        or (isinstance(n.func, ast.Attribute) and n.func.attr == "system"))})
    out.append({"spec": spec, "leaked": leaked, "dangerous": dangerous})
print(json.dumps(out))
`;

export interface InspectedDag {
  spec: Record<string, unknown>;
  leaked: string[];
  dangerous: string[];
}

/** Inspects rendered DAG sources with python3 (see INSPECT); `fragments` are payload pieces that must stay inside literals. */
export function inspectDags(cases: { source: string; fragments: string[] }[]): InspectedDag[] {
  return JSON.parse(
    execFileSync('python3', ['-c', INSPECT], { input: JSON.stringify(cases), maxBuffer: 64 * 1024 * 1024 }).toString(),
  );
}

/** The JOB_SPEC a rendered DAG carries, decoded by python3. */
export function renderedJobSpec(source: string): Record<string, unknown> {
  return inspectDags([{ source, fragments: [] }])[0].spec;
}

/** A renderer input with every field set; `overrides` replace any of them. */
export function dagJob(overrides: Partial<DagJob> = {}): DagJob {
  return {
    jobId: randomUUID(),
    name: 'churn',
    domain: 'marketing',
    owner: 'alice',
    sourceTable: 'marketing.churn',
    labelColumn: 'churned',
    featureColumns: ['a', 'b'],
    problemType: ProblemType.BinaryClassification,
    algorithm: AutoMLAlgorithm.LightgbmClassifier,
    preset: Preset.Balanced,
    tuningTrials: null,
    tuningTimeBudgetMinutes: null,
    autoTrigger: true,
    startDate: new Date('2026-05-01T12:00:03Z'),
    featureEngineeringJobId: null,
    groupColumn: null,
    actionColumn: null,
    propensityColumn: null,
    rewardColumn: null,
    costColumn: null,
    ...overrides,
  };
}

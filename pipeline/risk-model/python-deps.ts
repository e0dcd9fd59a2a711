/**
 * Whether this machine can train the risk model (python3 with scikit-learn, skl2onnx, onnx,
 * onnxruntime and duckdb — test/requirements.txt). Tests that need it are skipped visibly when
 * it cannot, and fail instead under CI=true, where infra/ensure-test-deps.sh must have installed it.
 */
import { spawnSync } from 'node:child_process';

export const TRAIN_MODULES = ['sklearn', 'skl2onnx', 'onnx', 'onnxruntime', 'duckdb', 'numpy'];

export function pythonCanTrain(python = process.env.PENUMBRA_PYTHON || 'python3'): { ok: boolean; detail: string } {
  const r = spawnSync(python, ['-c', `import ${TRAIN_MODULES.join(', ')}`], { encoding: 'utf8', timeout: 60_000 });
  if (r.error) return { ok: false, detail: `${python}: ${r.error.message}` };
  return r.status === 0 ? { ok: true, detail: '' } : { ok: false, detail: (r.stderr || '').trim().split('\n').pop() ?? `exit ${r.status}` };
}

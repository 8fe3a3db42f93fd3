import baseTeardown from '../setup/global-teardown';
import { MlflowServer } from '../utils/mlflow-server';
import { RealAirflow } from '../utils/real-airflow';

export default async function globalTeardown(): Promise<void> {
  const airflow = (globalThis as { realAirflow?: RealAirflow }).realAirflow;
  if (airflow) {
    const { total, byProcess } = airflow.rssMiB();
    process.stderr.write(`real Airflow RSS at the end: ${total} MiB ${JSON.stringify(byProcess)}\n`);
    if (airflow.restarts.length > 0)
      process.stderr.write(`real Airflow components restarted after a crash: ${airflow.restarts.join('; ')}\n`);
    await airflow.stop();
  }
  await (globalThis as { realMlflow?: MlflowServer }).realMlflow?.stop();
  await baseTeardown();
}

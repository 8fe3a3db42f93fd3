import { Inject, Injectable } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { APP_CONFIG, AppConfig } from '../../config/app.config';

/**
 * Places rendered DAG files in AIRFLOW_DAGS_DIR. A file appears whole or not
 * at all (written to a hidden temp name, then renamed over), so Airflow's
 * parser never reads a half-written DAG.
 */
@Injectable()
export class DagDeployer {
  private readonly dir: string;

  constructor(@Inject(APP_CONFIG) config: AppConfig) {
    this.dir = config.airflow.dagsDir;
  }

  pathOf(dagId: string): string {
    return join(this.dir, `${dagId}.py`);
  }

  async deploy(dagId: string, source: string): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    // A leading dot keeps Airflow's parser (and .airflowignore-less folders) off the temp file.
    const temp = join(this.dir, `.${dagId}.${randomBytes(6).toString('hex')}.tmp`);
    try {
      await writeFile(temp, source, { encoding: 'utf8', mode: 0o644 });
      await rename(temp, this.pathOf(dagId));
    } catch (error) {
      await rm(temp, { force: true });
      throw error;
    }
  }

  async remove(dagId: string): Promise<void> {
    await rm(this.pathOf(dagId), { force: true });
  }
}

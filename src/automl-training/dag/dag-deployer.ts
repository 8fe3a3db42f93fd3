import { Inject, Injectable, Logger } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DomainError } from '../../common/errors/domain.error';
import { APP_CONFIG, AppConfig } from '../../config/app.config';

/**
 * Places rendered DAG files in AIRFLOW_DAGS_DIR. A file appears whole or not
 * at all (written to a hidden temp name, then renamed over), so Airflow's
 * parser never reads a half-written DAG.
 */
@Injectable()
export class DagDeployer {
  private readonly dir: string;
  private readonly logger = new Logger(DagDeployer.name);

  constructor(@Inject(APP_CONFIG) config: AppConfig) {
    this.dir = config.airflow.dagsDir;
  }

  pathOf(dagId: string): string {
    return join(this.dir, `${dagId}.py`);
  }

  async deploy(dagId: string, source: string): Promise<void> {
    // A leading dot keeps Airflow's parser off the temp file.
    const temp = join(this.dir, `.${dagId}.${randomBytes(6).toString('hex')}.tmp`);
    try {
      await mkdir(this.dir, { recursive: true });
      await writeFile(temp, source, { encoding: 'utf8', mode: 0o644 });
      await rename(temp, this.pathOf(dagId));
    } catch (error) {
      await rm(temp, { force: true }).catch(() => undefined);
      this.logger.error(`Could not write DAG ${dagId} to ${this.dir}: ${(error as Error).message}`);
      throw new DomainError('unavailable', 'Could not write the DAG file to the DAG folder; try again later');
    }
  }

  async remove(dagId: string): Promise<void> {
    await rm(this.pathOf(dagId), { force: true });
  }
}

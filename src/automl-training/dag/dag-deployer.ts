import { Inject, Injectable, Logger } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { access, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DomainError } from '../../common/errors/domain.error';
import { APP_CONFIG, AppConfig } from '../../config/app.config';
import { RUNTIME_IGNORE_PATTERN, trainingRuntime } from './dag-renderer';

/**
 * Places rendered DAG files in AIRFLOW_DAGS_DIR. A file appears whole or not
 * at all (written to a hidden temp name, then renamed over), so Airflow's
 * parser never reads a half-written DAG. Before a DAG file, the runtime module
 * it imports is there (written once per version, never removed: DAGs rendered
 * with an older version keep importing it), and `.airflowignore` keeps the
 * parser off it.
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
    try {
      await mkdir(this.dir, { recursive: true });
      await this.ensureRuntime();
      await this.writeAtomically(`${dagId}.py`, source);
    } catch (error) {
      this.logger.error(`Could not write DAG ${dagId} to ${this.dir}: ${(error as Error).message}`);
      throw new DomainError('unavailable', 'Could not write the DAG file to the DAG folder; try again later');
    }
  }

  async remove(dagId: string): Promise<void> {
    await rm(this.pathOf(dagId), { force: true });
  }

  /** Whether the DAG file is in the folder. */
  async exists(dagId: string): Promise<boolean> {
    return access(this.pathOf(dagId)).then(
      () => true,
      () => false,
    );
  }

  /** The runtime module and its .airflowignore line, each written only when missing (a stat and a read otherwise). */
  private async ensureRuntime(): Promise<void> {
    const runtime = trainingRuntime();
    const ignoreFile = join(this.dir, '.airflowignore');
    const ignore = await readFile(ignoreFile, 'utf8').catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return '';
      throw error;
    });
    if (!ignore.split(/\r?\n/).some((line) => line.trim() === RUNTIME_IGNORE_PATTERN)) {
      // Kept: whatever the folder's owner already ignores.
      const separator = ignore === '' || ignore.endsWith('\n') ? '' : '\n';
      await this.writeAtomically(
        '.airflowignore',
        `${ignore}${separator}# AutoML Training: the runtime DAG files import\n${RUNTIME_IGNORE_PATTERN}\n`,
      );
    }
    if (
      !(await access(join(this.dir, runtime.fileName)).then(
        () => true,
        () => false,
      ))
    ) {
      await this.writeAtomically(runtime.fileName, runtime.source);
    }
  }

  private async writeAtomically(name: string, text: string): Promise<void> {
    // A leading dot keeps Airflow's parser off the temp file.
    const temp = join(this.dir, `.${name}.${randomBytes(6).toString('hex')}.tmp`);
    try {
      await writeFile(temp, text, { encoding: 'utf8', mode: 0o644 });
      await rename(temp, join(this.dir, name));
    } catch (error) {
      await rm(temp, { force: true }).catch(() => undefined);
      throw error;
    }
  }
}

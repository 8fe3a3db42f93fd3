import { Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '../../config/app.config';
import { DagDeployer } from './dag-deployer';
import { LeaderLock } from '../leadership/leader-lock';
import { TrainingJobRepository } from '../persistence/training-job.repository';

/** Arbitrary constant shared by every replica (not the reconciler's): whoever holds it retires DAG files. */
const LEADER_LOCK_KEY = 727_143_003;
const BATCH_SIZE = 500;

/** How often the sweep runs: a quarter of the retention, between 1 s and 1 min. */
export function retirementPeriodMs(retentionMs: number): number {
  return Math.min(60_000, Math.max(1_000, Math.floor(retentionMs / 4)));
}

/**
 * Keeps the DAG folder to live jobs and those that ended within
 * DAG_RETENTION_MS: one replica at a time (its own advisory lock, as the
 * background reconciler) removes the files of jobs terminal for longer and
 * marks them retired. Airflow keeps a removed DAG's runs and task logs (the
 * DAG becomes stale), so `/logs` still answers; a retry deploys the stored
 * DAG again (JobAirflowActionsService.trigger).
 */
@Injectable()
export class DagRetirer implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(DagRetirer.name);
  private readonly leader: LeaderLock;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<number | null> | null = null;

  constructor(
    private readonly repository: TrainingJobRepository,
    private readonly deployer: DagDeployer,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {
    this.leader = new LeaderLock(LEADER_LOCK_KEY, 'DAG retirement', config.database, this.logger);
  }

  onApplicationBootstrap(): void {
    const retention = this.config.airflow.dagRetentionMs;
    if (retention === 0) return;
    this.timer = setInterval(() => void this.tick(), retirementPeriodMs(retention));
    this.timer.unref();
  }

  async onApplicationShutdown(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.running;
    await this.leader.release();
  }

  /** One sweep if this replica leads: the number of DAG files retired (null when not leading, or still sweeping). */
  async tick(): Promise<number | null> {
    if (this.running) return null;
    this.running = this.sweep().catch((error) => {
      this.logger.warn(`DAG retirement failed: ${(error as Error).message}`);
      return null;
    });
    try {
      return await this.running;
    } finally {
      this.running = null;
    }
  }

  private async sweep(): Promise<number | null> {
    if (!(await this.leader.lead())) return null;
    let retired = 0;
    for (;;) {
      const dagIds = await this.repository.retireDags(this.config.airflow.dagRetentionMs, BATCH_SIZE, (ids) =>
        Promise.all(ids.map((dagId) => this.deployer.remove(dagId))).then(() => undefined),
      );
      retired += dagIds.length;
      if (dagIds.length < BATCH_SIZE) break;
    }
    if (retired > 0) this.logger.log(`Retired ${retired} DAG file(s) of jobs terminal for over ${this.config.airflow.dagRetentionMs} ms`);
    return retired;
  }
}

import { Inject, Injectable } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '../../config/app.config';
import { DagDeployer } from './dag-deployer';
import { LeaderTask } from '../leadership/leader-task';
import { ADVISORY_LOCK_KEYS } from '../leadership/lock-keys';
import { JobMaintenanceQueries } from '../persistence/job-maintenance.queries';

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
export class DagRetirer extends LeaderTask<number> {
  constructor(
    private readonly maintenance: JobMaintenanceQueries,
    private readonly deployer: DagDeployer,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {
    super(ADVISORY_LOCK_KEYS.dagRetirement, 'DAG retirement', config.database);
  }

  protected periodMs(): number | null {
    const retention = this.config.airflow.dagRetentionMs;
    return retention === 0 ? null : retirementPeriodMs(retention);
  }

  /** One sweep: the number of DAG files retired. */
  protected async run(): Promise<number> {
    let retired = 0;
    for (;;) {
      const dagIds = await this.maintenance.retireDags(this.config.airflow.dagRetentionMs, BATCH_SIZE, (ids) =>
        Promise.all(ids.map((dagId) => this.deployer.remove(dagId))).then(() => undefined),
      );
      retired += dagIds.length;
      if (dagIds.length < BATCH_SIZE) break;
    }
    if (retired > 0)
      this.logger.log(
        `Retired ${retired} DAG file(s) of jobs terminal for over ${this.config.airflow.dagRetentionMs} ms`,
      );
    return retired;
  }
}

import { Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { DatabaseConfig } from '../../config/app.config';
import { LeaderLock } from './leader-lock';
import { AdvisoryLockKey } from './lock-keys';

/**
 * A background task that one replica at a time runs every `periodMs` (see LeaderLock): a timer that does not
 * keep the process alive, one run at a time (a tick while a run is under way is skipped), and a run that fails
 * logged as a warning, the next tick trying again. Shutdown waits for the run under way, then lets go of the lock.
 */
export abstract class LeaderTask<R> implements OnApplicationBootstrap, OnApplicationShutdown {
  protected readonly logger: Logger;
  private readonly leader: LeaderLock;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<R | null> | null = null;

  /** `what` names the task in the logs ("Leading …", "… failed: …"). */
  constructor(
    key: AdvisoryLockKey,
    private readonly what: string,
    database: DatabaseConfig,
  ) {
    this.logger = new Logger(new.target.name);
    this.leader = new LeaderLock(key, what, database, this.logger);
  }

  /** How often the task runs; null when it is off. */
  protected abstract periodMs(): number | null;

  /** One run, on the replica that leads. */
  protected abstract run(): Promise<R>;

  onApplicationBootstrap(): void {
    const period = this.periodMs();
    if (period === null) return;
    this.timer = setInterval(() => void this.tick(), period);
    this.timer.unref();
  }

  async onApplicationShutdown(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.running;
    await this.leader.release();
  }

  /** One run if this replica leads (null otherwise, or while a run is still under way, or when it failed). */
  async tick(): Promise<R | null> {
    if (this.running) return null;
    this.running = this.lead().catch((error) => {
      this.logger.warn(`${this.what[0].toUpperCase()}${this.what.slice(1)} failed: ${(error as Error).message}`);
      return null;
    });
    try {
      return await this.running;
    } finally {
      this.running = null;
    }
  }

  private async lead(): Promise<R | null> {
    if (!(await this.leader.lead())) return null;
    return this.run();
  }
}

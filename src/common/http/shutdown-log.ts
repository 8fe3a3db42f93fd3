import { BeforeApplicationShutdown, Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';

/**
 * Says in the log that the process is stopping and why (SIGTERM from the
 * orchestrator, say), and when every shutdown hook has run, so a restart is
 * never a silent gap in the logs.
 */
@Injectable()
export class ShutdownLog implements BeforeApplicationShutdown, OnApplicationShutdown {
  private readonly logger = new Logger('Shutdown');
  private startedAt = 0;

  beforeApplicationShutdown(signal?: string): void {
    this.startedAt = Date.now();
    this.logger.log(
      `${signal ? `Received ${signal}` : 'Closing'}: ending event streams, finishing requests in flight, closing the database`,
    );
  }

  onApplicationShutdown(signal?: string): void {
    this.logger.log(`Shut down${signal ? ` on ${signal}` : ''} in ${Date.now() - this.startedAt} ms`);
  }
}

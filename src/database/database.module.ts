import { DynamicModule, Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { DataSource, DataSourceOptions } from 'typeorm';
import { DatabaseConfig } from '../config/app.config';
import { resolveDatabase, runMigrations } from './database.config';
import type { EmbeddedPostgres } from './embedded-postgres';

/** Stops the embedded server, if any, once the connection pool is closed. */
class AppDataSource extends DataSource {
  constructor(
    options: DataSourceOptions,
    private readonly embedded: EmbeddedPostgres | null,
  ) {
    super(options);
  }

  override async destroy(): Promise<void> {
    await super.destroy();
    await this.embedded?.stop();
  }
}

@Module({})
export class DatabaseModule {
  static forRoot(config: DatabaseConfig): DynamicModule {
    return {
      module: DatabaseModule,
      imports: [
        TypeOrmModule.forRootAsync({
          useFactory: () => ({ type: 'postgres', retryAttempts: 2, retryDelay: 1_000 }),
          dataSourceFactory: async () => {
            const { options, embedded } = await resolveDatabase(config);
            const dataSource = new AppDataSource(options, embedded);
            try {
              await dataSource.initialize();
              if (config.migrationsRun) await runMigrations(dataSource);
            } catch (error) {
              if (dataSource.isInitialized) await dataSource.destroy();
              else await embedded?.stop();
              throw error;
            }
            return dataSource;
          },
        }),
      ],
    };
  }
}

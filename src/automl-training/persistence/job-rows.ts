import { EntityMetadata } from 'typeorm';
import { TrainingJobEntity } from './training-job.entity';

type JobProperty = keyof TrainingJobEntity & string;

/**
 * Job rows as the pg pool returns them (columns by database name) read into the entity's properties, and the
 * entity's columns for a statement to select, both from the entity's metadata: one mapping, never by hand.
 */
export class JobRows {
  /** Entity property ← row column, worked out once from the entity's metadata. */
  private pairs: [string, string][] | null = null;
  private readonly readers = new Map<string, (row: Record<string, unknown>) => unknown>();

  constructor(private readonly metadata: () => EntityMetadata) {}

  /**
   * The entity's columns, quoted (each prefixed, e.g. `job.`), or those of `properties`. The named (prepared)
   * statements select these, never `*`: a column that a newer replica's migration adds would otherwise change
   * their result type, and PostgreSQL then refuses them ("cached plan must not change result type") on every
   * pooled connection of the replicas still running, until each connection closes.
   */
  columns(prefix = '', properties?: readonly JobProperty[]): string {
    const pairs = properties ? properties.map((property) => [property, this.column(property)]) : this.columnPairs();
    return pairs.map(([, column]) => `${prefix}"${column}"`).join(', ');
  }

  /** The row as a job entity (every column the row has). */
  entity(row: Record<string, unknown>): TrainingJobEntity {
    const entity = this.metadata().create() as TrainingJobEntity;
    const target = entity as unknown as Record<string, unknown>;
    for (const [property, column] of this.columnPairs()) target[property] = row[column];
    return entity;
  }

  /** Reads `properties` of a row (a plain object): the reader is built once per list of properties. */
  reader<K extends JobProperty>(
    properties: readonly K[],
  ): (row: Record<string, unknown>) => Pick<TrainingJobEntity, K> {
    const key = properties.join(',');
    let read = this.readers.get(key);
    if (!read) {
      const pairs = properties.map((property) => [property, this.column(property)] as const);
      read = (row) => {
        const picked: Record<string, unknown> = {};
        for (const [property, column] of pairs) picked[property] = row[column];
        return picked;
      };
      this.readers.set(key, read);
    }
    return read as (row: Record<string, unknown>) => Pick<TrainingJobEntity, K>;
  }

  /** The database name of a property's column. */
  column(property: string): string {
    const column = this.metadata().findColumnWithPropertyName(property);
    if (!column) throw new Error(`Unknown job property ${property}`);
    return column.databaseName;
  }

  private columnPairs(): [string, string][] {
    return (this.pairs ??= this.metadata().columns.map((column) => [column.propertyName, column.databaseName]));
  }
}

/** What a status answer and reconciliation read of a job. */
export const STATUS_VIEW = [
  'jobId',
  'owner',
  'status',
  'airflowDagId',
  'airflowRunId',
  'errorMessage',
  'version',
  'updatedAt',
] as const;

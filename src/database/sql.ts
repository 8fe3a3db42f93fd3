import { DataSource } from 'typeorm';

interface PgPool {
  query(config: { name?: string; text: string; values: unknown[] }): Promise<{ rows: Record<string, unknown>[] }>;
}

/**
 * Runs SQL straight on the driver's pg pool and returns the rows, whatever the
 * statement. (TypeORM's DataSource.query answers UPDATE/DELETE with
 * `[rows, affectedCount]`, which reads as two rows.) A `name` makes it a
 * prepared statement: parsed and planned once per connection.
 */
export async function sqlRows<T = Record<string, unknown>>(
  dataSource: DataSource,
  text: string,
  params: unknown[],
  name?: string,
): Promise<T[]> {
  const pool = (dataSource.driver as unknown as { master?: PgPool }).master;
  if (!pool) throw new Error('The PostgreSQL driver has no pool');
  return (await pool.query(name ? { name, text, values: params } : { text, values: params })).rows as T[];
}

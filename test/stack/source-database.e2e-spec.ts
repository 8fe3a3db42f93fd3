import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { databaseUrl, TEMPLATE_ENV, testDatabaseUrl, usesPostgres, withAdminClient } from '../setup/test-database';
import { createSourceDatabase, SourceDatabase, SOURCE_SCHEMA } from '../utils/source-database';

/**
 * Runs `sql` as `url`'s user (statements of an array one after the other, each in its own transaction); resolves
 * the last one's rows, or the PostgreSQL error code a statement was refused with.
 */
async function as(url: string, sql: string | string[]): Promise<{ rows?: unknown[]; refused?: string }> {
  const client = new Client({ connectionString: url });
  try {
    await client.connect();
    let rows: unknown[] = [];
    for (const statement of typeof sql === 'string' ? [sql] : sql) rows = (await client.query(statement)).rows;
    return { rows };
  } catch (error) {
    return { refused: (error as { code?: string }).code ?? String(error) };
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * `npm run stack`'s source database (test/utils/source-database.ts) on the machine's PostgreSQL: the role the
 * trainer's `automl_source` Connection uses reads the tables loaded there and nothing else. It writes nothing,
 * creates nothing, and cannot reach the service's database (a clone of the migrated service schema).
 */
(usesPostgres() ? describe : describe.skip)(
  "the stack's source database and its read-only role (real PostgreSQL)",
  () => {
    const suffix = randomBytes(4).toString('hex');
    const serviceDb = `${process.env[TEMPLATE_ENV]}_svc${suffix}`;
    let source: SourceDatabase;

    beforeAll(async () => {
      await withAdminClient((client) =>
        client.query(`CREATE DATABASE "${serviceDb}" TEMPLATE "${process.env[TEMPLATE_ENV]}"`),
      );
      source = await createSourceDatabase(testDatabaseUrl(), `automl_src_test_${suffix}`, [serviceDb]);
      const load = await as(
        source.ownerUrl,
        `CREATE TABLE ${SOURCE_SCHEMA}.sample (x double precision, malignant integer);
       INSERT INTO ${SOURCE_SCHEMA}.sample VALUES (1.5, 1), (2.5, 0)`,
      );
      expect(load.refused).toBeUndefined();
    });

    afterAll(async () => {
      await source?.drop();
      await withAdminClient((client) => client.query(`DROP DATABASE IF EXISTS "${serviceDb}" WITH (FORCE)`));
    });

    it('reads the tables the owner loads, those loaded later and in new schemas included', async () => {
      expect(await as(source.readerUrl, `SELECT count(*)::int AS n FROM ${SOURCE_SCHEMA}.sample`)).toEqual({
        rows: [{ n: 2 }],
      });
      expect(
        (
          await as(
            source.ownerUrl,
            'CREATE SCHEMA later; CREATE TABLE later.t AS SELECT 7 AS v; CREATE TABLE public.p AS SELECT 8 AS v',
          )
        ).refused,
      ).toBeUndefined();
      expect(await as(source.readerUrl, 'SELECT v FROM later.t UNION ALL SELECT v FROM public.p ORDER BY v')).toEqual({
        rows: [{ v: 7 }, { v: 8 }],
      });
    });

    it('writes nothing: no insert, update, delete, truncate, create or temporary table, even with read-only turned off', async () => {
      for (const sql of [
        `INSERT INTO ${SOURCE_SCHEMA}.sample VALUES (3, 1)`,
        `UPDATE ${SOURCE_SCHEMA}.sample SET malignant = 0`,
        `DELETE FROM ${SOURCE_SCHEMA}.sample`,
        `TRUNCATE ${SOURCE_SCHEMA}.sample`,
        `CREATE TABLE ${SOURCE_SCHEMA}.mine (x int)`,
        'CREATE TABLE public.mine (x int)',
        'CREATE SCHEMA mine',
      ]) {
        // The role's default_transaction_read_only answers first (25006); its privileges refuse the same (42501).
        expect({ sql, ...(await as(source.readerUrl, sql)) }).toEqual({ sql, refused: '25006' });
        expect({ sql, ...(await as(source.readerUrl, ['SET default_transaction_read_only = off', sql])) }).toEqual({
          sql,
          refused: '42501',
        });
      }
      expect(
        await as(source.readerUrl, ['SET default_transaction_read_only = off', 'CREATE TEMPORARY TABLE t (x int)']),
      ).toEqual({ refused: '42501' });
      expect(await as(source.ownerUrl, `SELECT count(*)::int AS n FROM ${SOURCE_SCHEMA}.sample`)).toEqual({
        rows: [{ n: 2 }],
      });
    });

    it("cannot reach the service's database, let alone read its tables", async () => {
      const reader = new URL(source.readerUrl);
      reader.pathname = `/${serviceDb}`;
      expect(await as(reader.toString(), 'SELECT count(*) FROM automl_training_jobs')).toEqual({ refused: '42501' });
      // The service itself (the admin user) still connects there.
      expect((await as(databaseUrl(serviceDb), 'SELECT count(*) FROM automl_training_jobs')).refused).toBeUndefined();
      // And were CONNECT granted again, the tables stay closed to it.
      await withAdminClient((client) => client.query(`GRANT CONNECT ON DATABASE "${serviceDb}" TO "${source.role}"`));
      try {
        for (const table of [
          'automl_training_jobs',
          'automl_training_job_transitions',
          'automl_training_auth_failures',
        ]) {
          expect({ table, ...(await as(reader.toString(), `SELECT * FROM ${table} LIMIT 1`)) }).toEqual({
            table,
            refused: '42501',
          });
        }
      } finally {
        await withAdminClient((client) =>
          client.query(`REVOKE CONNECT ON DATABASE "${serviceDb}" FROM "${source.role}"`),
        );
      }
    });

    it('is a role without powers: not a superuser, cannot create databases or roles', async () => {
      expect(
        await as(
          source.readerUrl,
          `SELECT rolsuper, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = current_user`,
        ),
      ).toEqual({
        rows: [{ rolsuper: false, rolcreatedb: false, rolcreaterole: false }],
      });
    });
  },
);

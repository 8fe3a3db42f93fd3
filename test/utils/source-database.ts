import { randomBytes } from 'node:crypto';
import { Client } from 'pg';

/**
 * Where the trainer reads user tables, kept apart from the service's own data as in production: a database of
 * its own on the same PostgreSQL server, owned by the admin user (who loads tables), and a login role that may
 * only connect to it and read. The trainer's Connection (`automl_source`) uses that role.
 */
export interface SourceDatabase {
  /** The source database's name. */
  database: string;
  /** The read-only login role the trainer's Connection uses. */
  role: string;
  /** postgres://role:password@host:port/database: what the `automl_source` Connection holds. */
  readerUrl: string;
  /** The admin URL on the source database: who loads tables (new tables and schemas become readable by the role). */
  ownerUrl: string;
  /** Drops the database and the role. */
  drop(): Promise<void>;
}

/** Schema the sample table goes into and where a user's own tables may go (any new schema works too). */
export const SOURCE_SCHEMA = 'samples';

const ident = (name: string) => `"${name.replace(/"/g, '""')}"`;

/** One pg client on `url` for `fn`, always closed. */
export async function withClient<T>(url: string, fn: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

function onDatabase(url: string, database: string): string {
  const next = new URL(url);
  next.pathname = `/${database}`;
  return next.toString();
}

/**
 * Creates database `name` on the server of `adminUrl` (a superuser, or a role with CREATEDB and CREATEROLE) and
 * the role `<name>_reader`: LOGIN with a random password, `default_transaction_read_only`, CONNECT on that
 * database only (PUBLIC's default CONNECT is revoked there and on each of `closeDatabases`, e.g. the service's
 * and Airflow's databases), USAGE on its schemas and SELECT on its tables, today's and those the owner creates
 * later (default privileges). PUBLIC loses CREATE and TEMP there, so the role can write nothing.
 */
export async function createSourceDatabase(
  adminUrl: string,
  name: string,
  closeDatabases: string[] = [],
): Promise<SourceDatabase> {
  const role = `${name}_reader`;
  const password = randomBytes(18).toString('base64url');
  const drop = async () => {
    await withClient(adminUrl, async (client) => {
      await client.query(`DROP DATABASE IF EXISTS ${ident(name)} WITH (FORCE)`);
      await client.query(`DROP ROLE IF EXISTS ${ident(role)}`);
    });
  };
  try {
    await withClient(adminUrl, async (client) => {
      await client.query(`CREATE DATABASE ${ident(name)}`);
      await client.query(
        `CREATE ROLE ${ident(role)} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD '${password}'`,
      );
      await client.query(`ALTER ROLE ${ident(role)} SET default_transaction_read_only = on`);
      await client.query(`REVOKE ALL ON DATABASE ${ident(name)} FROM PUBLIC`);
      await client.query(`GRANT CONNECT ON DATABASE ${ident(name)} TO ${ident(role)}`);
      for (const other of closeDatabases)
        await client.query(`REVOKE CONNECT, TEMPORARY ON DATABASE ${ident(other)} FROM PUBLIC`);
    });
    await withClient(onDatabase(adminUrl, name), async (client) => {
      const { rows } = await client.query<{ owner: string }>('SELECT current_user AS owner');
      const owner = ident(rows[0].owner);
      await client.query('REVOKE ALL ON SCHEMA public FROM PUBLIC');
      await client.query(`CREATE SCHEMA ${ident(SOURCE_SCHEMA)}`);
      await client.query(`GRANT USAGE ON SCHEMA public, ${ident(SOURCE_SCHEMA)} TO ${ident(role)}`);
      await client.query(`ALTER DEFAULT PRIVILEGES FOR ROLE ${owner} GRANT SELECT ON TABLES TO ${ident(role)}`);
      await client.query(`ALTER DEFAULT PRIVILEGES FOR ROLE ${owner} GRANT USAGE ON SCHEMAS TO ${ident(role)}`);
    });
  } catch (error) {
    await drop().catch(() => undefined);
    throw error;
  }
  const reader = new URL(onDatabase(adminUrl, name));
  reader.username = role;
  reader.password = password;
  return { database: name, role, readerUrl: reader.toString(), ownerUrl: onDatabase(adminUrl, name), drop };
}

/** The same URL as SQLAlchemy wants it for psycopg2 (what scripts/sample_table.py takes). */
export function sqlalchemyUrl(url: string): string {
  const next = new URL(url);
  next.protocol = 'postgresql+psycopg2:';
  return next.toString();
}

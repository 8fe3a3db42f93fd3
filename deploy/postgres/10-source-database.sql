-- Run once by the postgres image when its volume is new (docker-entrypoint-initdb.d), as POSTGRES_USER (automl).
-- The tables jobs train on live apart from the service's database (automl), in automl_source, read by a role
-- that may connect there only and read, never write: the trainer's Connection (automl_source) uses it, as
-- `npm run stack` does (test/utils/source-database.ts). Load tables as automl; they become readable by the role.
CREATE ROLE automl_reader LOGIN PASSWORD 'automl_reader';
ALTER ROLE automl_reader SET default_transaction_read_only = on;
CREATE DATABASE automl_source;
REVOKE ALL ON DATABASE automl_source FROM PUBLIC;
GRANT CONNECT ON DATABASE automl_source TO automl_reader;
REVOKE CONNECT, TEMPORARY ON DATABASE automl FROM PUBLIC;
\connect automl_source
REVOKE ALL ON SCHEMA public FROM PUBLIC;
CREATE SCHEMA samples;
GRANT USAGE ON SCHEMA public, samples TO automl_reader;
ALTER DEFAULT PRIVILEGES FOR ROLE automl GRANT SELECT ON TABLES TO automl_reader;
ALTER DEFAULT PRIVILEGES FOR ROLE automl GRANT USAGE ON SCHEMAS TO automl_reader;

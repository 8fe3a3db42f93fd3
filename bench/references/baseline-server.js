// The raw baseline for the writeback benchmark: bare node:http + pg doing the
// same single-row UPDATE … RETURNING the service's writeback does, with no
// framework, auth, validation or lifecycle. Run as a child process by startBaseline in bench/shared/service-process.ts.
const { createServer } = require('node:http');
const { Pool } = require('pg');

const pool = new Pool({ connectionString: process.env.DATABASE_URL, max: Number(process.env.POOL_SIZE ?? 10) });
const ROUTE = /^\/api\/automl\/train\/jobs\/([0-9a-f-]{36})\/status$/;

const server = createServer((req, res) => {
  const match = ROUTE.exec(req.url ?? '');
  const chunks = [];
  req.on('data', (chunk) => chunks.push(chunk));
  req.on('end', async () => {
    if (req.method !== 'PUT' || !match) {
      res.writeHead(404).end();
      return;
    }
    try {
      const { status } = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      const { rows } = await pool.query(
        'UPDATE automl_training_jobs SET status = $2, version = version + 1, updated_at = clock_timestamp() WHERE job_id = $1 RETURNING *',
        [match[1], status],
      );
      res
        .writeHead(rows.length ? 200 : 404, { 'content-type': 'application/json' })
        .end(JSON.stringify(rows[0] ?? null));
    } catch (error) {
      res.writeHead(500).end(String(error));
    }
  });
});
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => process.send?.({ port: server.address().port }));

import 'reflect-metadata';
import { Controller, Module, Param, Put } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import autocannon from 'autocannon';
import express from 'express';
import { fork } from 'node:child_process';
import { createServer } from 'node:http';
import { cpuTicks } from '../shared/writeback-load';

/**
 * `npm run bench:floor`: what the HTTP stack alone costs, with no database, auth, validation or logging:
 * the same PUT answered with a small constant JSON object by bare node:http, by a bare Express 5 route
 * and by a bare Nest route on platform-express, each in its own process under 50 connections for 6 s.
 * Prints requests per second and the server's CPU per request. The service's own CPU per writeback is
 * measured against these floors (see docs/benchmarks.md).
 */
const ROW = {
  job_id: '',
  name: 'job',
  status: 'running',
  version: 2,
  domain: 'bench',
  owner: 'bench',
  updated_at: new Date(0).toISOString(),
};
const PATH = '/api/automl/train/jobs/0b9b6e4e-6f0e-4c57-9a55-2c1b1f1d7a10/status';

@Controller('api/automl/train/jobs')
class FloorController {
  @Put(':job_id/status')
  writeback(@Param('job_id') jobId: string): object {
    return { ...ROW, job_id: jobId };
  }
}

@Module({ controllers: [FloorController] })
class FloorModule {}

async function serve(mode: string): Promise<number> {
  if (mode === 'node:http') {
    const server = createServer((req, res) => {
      req.resume();
      req.on('end', () =>
        res
          .writeHead(200, { 'content-type': 'application/json; charset=utf-8' })
          .end(JSON.stringify({ ...ROW, job_id: req.url })),
      );
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return (server.address() as { port: number }).port;
  }
  if (mode === 'express') {
    const app = express();
    app.put('/api/automl/train/jobs/:job_id/status', (req, res) => {
      res.json({ ...ROW, job_id: req.params.job_id });
    });
    const server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    return (server.address() as { port: number }).port;
  }
  const app = await NestFactory.create(FloorModule, { logger: false, bodyParser: false });
  await app.listen(0, '127.0.0.1');
  return Number(new URL(await app.getUrl()).port);
}

async function measure(mode: string): Promise<string> {
  const child = fork(__filename, [mode], {
    execArgv: ['-r', 'ts-node/register/transpile-only'],
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  const port = await new Promise<number>((resolve) =>
    child.once('message', (message: { port: number }) => resolve(message.port)),
  );
  const url = `http://127.0.0.1:${port}${PATH}`;
  const load = (seconds: number) =>
    autocannon({
      url,
      method: 'PUT',
      connections: 50,
      duration: seconds,
      headers: { 'content-type': 'application/json' },
      body: '{"status":"running"}',
    });
  await load(2);
  const before = cpuTicks(child.pid!);
  const result = await load(6);
  const ms = ((cpuTicks(child.pid!) - before) * 10) / result.requests.total;
  child.kill();
  return `${mode.padEnd(10)} ${Math.round(result.requests.average)} req/s, ${ms.toFixed(3)} ms server CPU per request`;
}

if (process.argv[2]) {
  void serve(process.argv[2]).then((port) => process.send?.({ port }));
} else {
  (async () => {
    for (const mode of ['node:http', 'express', 'nest']) console.log(await measure(mode));
  })().then(
    () => process.exit(0),
    (error) => {
      console.error(error);
      process.exit(1);
    },
  );
}

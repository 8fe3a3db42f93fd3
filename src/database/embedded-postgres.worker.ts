import { parentPort, workerData } from 'node:worker_threads';
import { serveEmbedded } from './embedded-server';

/** Worker side of EmbeddedPostgres: starts the server, posts its port (or the failure), stops on 'stop'. */
const { dataDir, migrated } = workerData as { dataDir: string | null; migrated: boolean };
serveEmbedded(dataDir, migrated).then(
  (server) => {
    parentPort!.postMessage({ port: server.port });
    parentPort!.on('message', (message) => {
      if (message !== 'stop') return;
      server.stop().then(
        () => parentPort!.postMessage({ stopped: true }),
        (error: unknown) =>
          parentPort!.postMessage({ stopped: true, error: error instanceof Error ? error.message : String(error) }),
      );
    });
  },
  (error: unknown) =>
    parentPort!.postMessage({ error: error instanceof Error ? (error.stack ?? error.message) : String(error) }),
);

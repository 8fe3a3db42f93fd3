import { createServer } from 'node:http';
import type { Duplex } from 'node:stream';
import { ExpressAdapter } from '@nestjs/platform-express';

/**
 * Largest request head accepted. The bulk status route takes up to 1000
 * repeated `ids` (≈ 41 KB of query string); Node's default of 16 KB would
 * refuse such a request line before the app sees it.
 */
export const MAX_HEADER_BYTES = 64 * 1024;

class ExpressAdapterWithLimits extends ExpressAdapter {
  override initHttpServer(): void {
    const server = createServer({ maxHeaderSize: MAX_HEADER_BYTES }, this.getInstance());
    server.on('clientError', answerClientError);
    this.httpServer = server;
  }
}

/**
 * Requests Node cannot even parse (bad framing, oversized head) are answered
 * with the contract's ErrorResponse too, instead of Node's empty 400.
 */
function answerClientError(error: Error & { code?: string }, socket: Duplex): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const [status, reason] =
    error.code === 'HPE_HEADER_OVERFLOW' ? [431, 'Request Header Fields Too Large'] : [400, 'Bad Request'];
  const body = JSON.stringify({ error: reason, code: status });
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

/** The HTTP adapter every instance of the app (main.ts and tests) is created with. */
export function createHttpAdapter(): ExpressAdapter {
  return new ExpressAdapterWithLimits();
}

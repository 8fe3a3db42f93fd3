import { createServer } from 'node:http';
import { ExpressAdapter } from '@nestjs/platform-express';

/**
 * Largest request head accepted. The bulk status route takes up to 1000
 * repeated `ids` (≈ 41 KB of query string); Node's default of 16 KB would
 * refuse such a request line before the app sees it.
 */
export const MAX_HEADER_BYTES = 64 * 1024;

class ExpressAdapterWithLimits extends ExpressAdapter {
  override initHttpServer(): void {
    this.httpServer = createServer({ maxHeaderSize: MAX_HEADER_BYTES }, this.getInstance());
  }
}

/** The HTTP adapter every instance of the app (main.ts and tests) is created with. */
export function createHttpAdapter(): ExpressAdapter {
  return new ExpressAdapterWithLimits();
}

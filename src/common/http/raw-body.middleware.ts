import express, { RequestHandler } from 'express';
import { errorBody } from '../errors/error-response.filter';

/**
 * Reads every request body as raw bytes, whatever its content type; decoding
 * happens per route (BodyDecodeGuard) because FastAPI only parses bodies of
 * routes that declare one. Parser failures (too large, bad length, aborted)
 * are answered here with the contract's ErrorResponse.
 */
export function rawBody(limit: string): RequestHandler {
  const parse = express.raw({ type: () => true, limit });
  return (req, res, next) => {
    parse(req, res, (error?: unknown) => {
      if (!error) return next();
      const status = (error as { status?: number }).status ?? 400;
      const type = (error as { type?: string }).type;
      const message =
        type === 'entity.too.large'
          ? `Request body is larger than the limit of ${limit}`
          : status === 415
            ? 'Unsupported request body encoding'
            : 'There was an error parsing the body';
      const code = type === 'entity.too.large' ? 413 : status >= 400 && status < 500 ? status : 400;
      res.status(code).json(errorBody(message, code));
    });
  };
}

import express, { Request, RequestHandler, Response } from 'express';
import { errorBody } from '../errors/error-response.filter';

/** BODY_LIMIT (`512kb`, `1mb`, validated at start) in bytes, 1024-based as body-parser counts. */
export function limitBytes(limit: string): number {
  const match = /^(\d+)(kb|mb)$/i.exec(limit);
  if (!match) throw new Error(`not a body size: ${limit}`);
  return Number(match[1]) * (match[2].toLowerCase() === 'kb' ? 1024 : 1024 * 1024);
}

type Failure = 'too_large' | 'invalid';

/**
 * Reads every request body as raw bytes (req.body, a Buffer), whatever its
 * content type; decoding happens per route (BodyDecodeGuard) because FastAPI
 * only parses bodies of routes that declare one. A plain body is read here
 * directly (chunks kept, the limit checked as they come); a body with a
 * Content-Encoding goes through express.raw (body-parser), which inflates
 * gzip/deflate/br and refuses other encodings. Failures (too large, bad
 * length, unsupported encoding) are answered with the contract's
 * ErrorResponse once the request has been read off, as body-parser does.
 */
export function rawBody(limit: string): RequestHandler {
  const maxBytes = limitBytes(limit);
  const encoded = express.raw({ type: () => true, limit });
  // Our reader's failures in body-parser's terms, so both are answered by one mapping.
  const asParserError = (failure: Failure) =>
    failure === 'too_large' ? { status: 413, type: 'entity.too.large' } : { status: 400, type: 'request.size.invalid' };
  const refuse = (res: Response, { status = 400, type }: { status?: number; type?: string }) => {
    const message =
      type === 'entity.too.large'
        ? `Request body is larger than the limit of ${limit}`
        : status === 415
          ? 'Unsupported request body encoding'
          : 'There was an error parsing the body';
    const code = type === 'entity.too.large' ? 413 : status >= 400 && status < 500 ? status : 400;
    res.status(code).json(errorBody(message, code));
  };
  return (req, res, next) => {
    if (req.headers['content-encoding'] !== undefined) {
      encoded(req, res, (error?: unknown) =>
        error ? refuse(res, error as { status?: number; type?: string }) : next(),
      );
      return;
    }
    const declared = req.headers['content-length'];
    // No body at all (neither a length nor chunks): body-parser's hasBody.
    if (declared === undefined && req.headers['transfer-encoding'] === undefined) return next();
    const expected = declared === undefined ? null : Number(declared);
    if (expected !== null && expected > maxBytes) return readOff(req, () => refuse(res, asParserError('too_large')));
    readBody(req, expected, maxBytes, (failure, body) => {
      if (failure) return readOff(req, () => refuse(res, asParserError(failure)));
      req.body = body;
      next();
    });
  };
}

/** Collects the body; `done` once, with the bytes or why they are refused (nothing if the client went away). */
function readBody(
  req: Request,
  expected: number | null,
  maxBytes: number,
  done: (failure: Failure | null, body?: Buffer) => void,
): void {
  const chunks: Buffer[] = [];
  let received = 0;
  const cleanup = () => {
    req.off('data', onData);
    req.off('end', onEnd);
    req.off('error', onGone);
    req.off('close', onGone);
  };
  const onData = (chunk: Buffer) => {
    received += chunk.length;
    if (received > maxBytes) {
      cleanup();
      return done('too_large');
    }
    chunks.push(chunk);
  };
  const onEnd = () => {
    cleanup();
    if (expected !== null && received !== expected) return done('invalid');
    done(null, chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, received));
  };
  // Aborted or broken: there is no one left to answer.
  const onGone = () => cleanup();
  req.on('data', onData);
  req.on('end', onEnd);
  req.on('error', onGone);
  req.on('close', onGone);
}

/** Reads off what remains of the request before answering, so the connection stays usable (body-parser's dump). */
function readOff(req: Request, then: () => void): void {
  if (req.readableEnded) return then();
  req.on('end', then);
  req.on('error', then);
  req.resume();
}

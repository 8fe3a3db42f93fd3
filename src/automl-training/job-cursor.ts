import { parseUuid } from '../common/validation/pydantic-uuid';
import { KeysetPosition } from './training-job.repository';

/** Opaque listing cursor: the (created_at, job_id) of the last row of a page. */
export function encodeCursor(position: KeysetPosition): string {
  return Buffer.from(JSON.stringify([position.createdAt.toISOString(), position.jobId])).toString('base64url');
}

export function decodeCursor(cursor: string): KeysetPosition | null {
  try {
    const decoded: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (!Array.isArray(decoded) || decoded.length !== 2) return null;
    const [createdAt, jobId] = decoded as unknown[];
    if (typeof createdAt !== 'string' || typeof jobId !== 'string') return null;
    const date = new Date(createdAt);
    const id = parseUuid(jobId);
    if (Number.isNaN(date.getTime()) || id === null || date.toISOString() !== createdAt) return null;
    return { createdAt: date, jobId: id };
  } catch {
    return null;
  }
}

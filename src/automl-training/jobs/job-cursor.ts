import { parseUuid } from '../../common/validation/pydantic-uuid';
import { KeysetPosition } from '../persistence/training-job.repository';

/**
 * Opaque listing cursor: the (created_at, job_id) of the last row of a page,
 * and `a` when the listing runs oldest first (a cursor only continues the
 * order it was made in).
 */
export function encodeCursor(position: KeysetPosition, ascending = false): string {
  const fields = [position.createdAt.toISOString(), position.jobId, ...(ascending ? ['a'] : [])];
  return Buffer.from(JSON.stringify(fields)).toString('base64url');
}

export function decodeCursor(cursor: string): (KeysetPosition & { ascending: boolean }) | null {
  try {
    const decoded: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (!Array.isArray(decoded) || decoded.length < 2 || decoded.length > 3) return null;
    const [createdAt, jobId, order] = decoded as unknown[];
    if (typeof createdAt !== 'string' || typeof jobId !== 'string') return null;
    if (decoded.length === 3 && order !== 'a') return null;
    const date = new Date(createdAt);
    const id = parseUuid(jobId);
    if (Number.isNaN(date.getTime()) || id === null || date.toISOString() !== createdAt) return null;
    return { createdAt: date, jobId: id, ascending: order === 'a' };
  } catch {
    return null;
  }
}

/** SQLSTATE classes and socket errors that mean "the database cannot be reached", not "the query is wrong". */
const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now
  '53300', // too_many_connections
]);
const UNAVAILABLE_MESSAGE =
  /is not currently accepting connections|terminating connection due to administrator command|Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|connection is closed|Connection ended/i;

/** True when `error` (possibly a TypeORM QueryFailedError wrapping a pg error) is a database outage. */
export function isDatabaseUnavailable(error: unknown): boolean {
  for (
    let cause = error as { code?: unknown; message?: unknown; driverError?: unknown } | undefined, depth = 0;
    cause && depth < 3;
    depth++
  ) {
    if (typeof cause.code === 'string' && (UNAVAILABLE_CODES.has(cause.code) || cause.code.startsWith('08')))
      return true;
    if (typeof cause.message === 'string' && UNAVAILABLE_MESSAGE.test(cause.message)) return true;
    cause = cause.driverError as typeof cause;
  }
  return false;
}

import { AutoMLTrainingJobStatus as Status } from './automl-training.enums';

const RANK: Record<Status, number> = {
  [Status.Ready]: 0,
  [Status.Queued]: 1,
  [Status.Running]: 2,
  [Status.Complete]: 3,
  [Status.Failed]: 3,
};

export function isTerminal(status: Status): boolean {
  return status === Status.Complete || status === Status.Failed;
}

export type TransitionDecision = 'same' | 'advance' | 'refuse';

/**
 * The lifecycle for status changes reported by Airflow (writeback and
 * reconciliation): ready → queued → running → complete | failed. A job may
 * skip ahead (a lost `running` callback) and any non-terminal job may fail; a
 * terminal job never moves, and nothing moves backwards. Only a user's
 * trigger retries a failed job (see canTrigger).
 */
export function decideTransition(current: Status, next: Status): TransitionDecision {
  if (current === next) return 'same';
  if (isTerminal(current)) return 'refuse';
  if (next === Status.Failed) return 'advance';
  return RANK[next] > RANK[current] ? 'advance' : 'refuse';
}

const ADVANCING_FROM = {} as Record<Status, readonly Status[]>;
for (const next of Object.values(Status)) {
  ADVANCING_FROM[next] = Object.values(Status).filter((current) => decideTransition(current, next) === 'advance');
}

/** The statuses `next` is a forward move from (decideTransition's 'advance'), computed once. */
export function statusesAdvancingTo(next: Status): readonly Status[] {
  return ADVANCING_FROM[next];
}

/** Manual trigger: ready → queued, or failed → queued as a retry. */
export function canTrigger(current: Status): boolean {
  return current === Status.Ready || current === Status.Failed;
}

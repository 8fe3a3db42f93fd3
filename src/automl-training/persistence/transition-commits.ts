/**
 * Told of every transition a job statement commits, so the transition feed wakes at once instead of at its next
 * poll. The module binds it to the events' TransitionNotifications; persistence depends on this port, not on them.
 */
export abstract class TransitionCommits {
  abstract committed(): void;
}

import { AutoMLTrainingJobStatus as S } from './automl-training.enums';
import { canTrigger, decideTransition, statusesAdvancingTo } from './training-job.lifecycle';

describe('decideTransition', () => {
  it.each([
    [S.Ready, S.Queued, 'advance'],
    [S.Ready, S.Running, 'advance'],
    [S.Queued, S.Running, 'advance'],
    [S.Queued, S.Complete, 'advance'],
    [S.Running, S.Complete, 'advance'],
    [S.Ready, S.Failed, 'advance'],
    [S.Queued, S.Failed, 'advance'],
    [S.Running, S.Failed, 'advance'],
    [S.Running, S.Running, 'same'],
    [S.Complete, S.Complete, 'same'],
    [S.Failed, S.Failed, 'same'],
    [S.Running, S.Queued, 'refuse'],
    [S.Queued, S.Ready, 'refuse'],
    [S.Complete, S.Running, 'refuse'],
    [S.Complete, S.Failed, 'refuse'],
    [S.Failed, S.Complete, 'refuse'],
    [S.Failed, S.Queued, 'refuse'],
  ])('should decide %s → %s as %s', (from, to, decision) => {
    expect(decideTransition(from, to)).toBe(decision);
  });
});

describe('canTrigger', () => {
  it.each([
    [S.Ready, true],
    [S.Failed, true],
    [S.Queued, false],
    [S.Running, false],
    [S.Complete, false],
  ])('should allow a trigger from %s: %s', (status, allowed) => {
    expect(canTrigger(status)).toBe(allowed);
  });
});

describe('statusesAdvancingTo', () => {
  it.each(Object.values(S))('should list exactly the statuses decideTransition advances to %s', (next) => {
    expect([...statusesAdvancingTo(next)].sort()).toEqual(
      Object.values(S)
        .filter((current) => decideTransition(current, next) === 'advance')
        .sort(),
    );
  });
});

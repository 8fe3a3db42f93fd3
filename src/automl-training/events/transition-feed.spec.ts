import { AutoMLTrainingJobStatus } from '../domain/automl-training.enums';
import { TrainingJobTransitionRepository, TransitionEventRow } from '../persistence/training-job-transition.repository';
import { TransitionFeed } from './transition-feed';
import { TransitionNotifications } from './transition-notifications';

/** The committed transitions, as the table would show them. */
class CommittedTransitions {
  readonly rows: TransitionEventRow[] = [];

  commit(id: number): void {
    this.rows.push({
      id,
      jobId: '00000000-0000-4000-8000-000000000000',
      domain: 'd',
      owner: 'o',
      from: null,
      to: AutoMLTrainingJobStatus.Queued,
      errorMessage: null,
      at: new Date(),
    });
    this.rows.sort((a, b) => a.id - b.id);
  }

  asRepository(): TrainingJobTransitionRepository {
    return {
      lastTransitionId: async () => this.rows.at(-1)?.id ?? 0,
      transitionsAfter: async (after: number, limit: number) =>
        this.rows.filter((row) => row.id > after).slice(0, limit),
    } as unknown as TrainingJobTransitionRepository;
  }
}

const settle = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** Long enough for a woken feed to read: it reads at most every 50 ms. */
const READ = 150;

describe('TransitionFeed', () => {
  let table: CommittedTransitions;
  let feed: TransitionFeed;
  let delivered: number[];

  beforeEach(async () => {
    table = new CommittedTransitions();
    table.commit(1);
    const notifications = { listen: async () => undefined } as unknown as TransitionNotifications;
    feed = new TransitionFeed(table.asRepository(), notifications);
    delivered = [];
    feed.subscribe((events) => delivered.push(...events.map((event) => event.id)));
    await feed.acquire();
  });

  afterEach(() => feed.onApplicationShutdown());

  it('should start after the newest committed transition and hand on new ones in id order', async () => {
    expect(feed.position).toBe(1);
    table.commit(2);
    table.commit(3);
    feed.wake();
    await settle(READ);
    expect(delivered).toEqual([2, 3]);
    expect(feed.position).toBe(3);
  });

  it('should hold back a transition behind a lower id not committed yet, and deliver both in order once it is', async () => {
    // Id 2 was taken by a transaction that commits after the one that took 3.
    table.commit(3);
    feed.wake();
    await settle(100);
    expect(delivered).toEqual([]);
    table.commit(2);
    feed.wake();
    await settle(READ);
    expect(delivered).toEqual([2, 3]);
  });

  it('should read nothing while nobody holds it, and catch up to the newest transition when held again', async () => {
    feed.release();
    table.commit(2);
    feed.wake();
    await settle(READ);
    expect(delivered).toEqual([]);
    table.commit(3);
    await feed.acquire();
    expect(feed.position).toBe(3);
    table.commit(4);
    feed.wake();
    await settle(READ);
    expect(delivered).toEqual([4]);
  });

  it('should skip a hole that never fills (a rolled-back insert) after waiting for it', async () => {
    table.commit(3);
    feed.wake();
    await settle(200);
    expect(delivered).toEqual([]);
    await settle(500);
    expect(delivered).toEqual([3]);
  });
});

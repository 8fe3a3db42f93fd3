import { CeleryOptions } from './real-airflow';

/** The pool every training takes a slot of on the Celery platform (`npm run stack -- --executor celery`, its e2e). */
export const STACK_POOL = 'automl_training';
/**
 * The Celery workers: `small` serves the default queue (the callbacks) and `train`; `large` serves `train-large`,
 * one training at a time, where best_quality jobs go.
 */
export function stackCelery(brokerUrl: string): CeleryOptions {
  return {
    brokerUrl,
    workers: [
      { name: 'small', queues: ['default', 'train'], concurrency: 2 },
      { name: 'large', queues: ['train-large'], concurrency: 1 },
    ],
  };
}
/** The service's routing to them: best_quality to train-large, every other preset to train; one pool. */
export const STACK_CELERY_SERVICE_ENV = {
  TRAINING_POOL: STACK_POOL,
  TRAINING_QUEUE: 'train',
  TRAINING_QUEUE_BY_PRESET: 'best_quality=train-large',
};

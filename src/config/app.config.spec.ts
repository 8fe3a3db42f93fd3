import express from 'express';
import { loadAppConfig } from './app.config';
import { ConfigurationError } from './env.validation';

const load = (env: Record<string, string>) => loadAppConfig({ DATABASE_URL: 'pglite://memory', ...env });

describe('TRUST_PROXY', () => {
  it('should trust no proxy when unset or 0: the socket address is the client', () => {
    expect(load({}).trustProxy).toBe(false);
    expect(load({ TRUST_PROXY: '' }).trustProxy).toBe(false);
    expect(load({ TRUST_PROXY: '0' }).trustProxy).toBe(false);
  });

  it("should take a hop count, or addresses, CIDRs and proxy-addr's range names", () => {
    expect(load({ TRUST_PROXY: '2' }).trustProxy).toBe(2);
    expect(load({ TRUST_PROXY: '10.0.0.0/8, 192.168.1.7,fd00::/8 ,::1' }).trustProxy).toEqual([
      '10.0.0.0/8',
      '192.168.1.7',
      'fd00::/8',
      '::1',
    ]);
    expect(load({ TRUST_PROXY: 'loopback,uniquelocal' }).trustProxy).toEqual(['loopback', 'uniquelocal']);
    // Express compiles what it is given when the service starts: every accepted value must compile.
    for (const value of ['1', '10.0.0.0/8,::1', 'linklocal,fe80::1%eth0,::ffff:10.0.0.1/120']) {
      expect(() => express().set('trust proxy', load({ TRUST_PROXY: value }).trustProxy)).not.toThrow();
    }
  });

  it.each([
    'true',
    'ingress',
    '10.0.0.0/33',
    '::1/129',
    '0.0.0.0/0',
    '10.0.0.1,',
    '300.1.1.1',
    '10.0.0.0/8/1',
    '100',
    '-1',
  ])('should refuse %p with one line naming the variable', (value) => {
    expect(() => load({ TRUST_PROXY: value })).toThrow(ConfigurationError);
    expect(() => load({ TRUST_PROXY: value })).toThrow(
      `Invalid configuration: TRUST_PROXY: expected a hop count (0-99) or comma-separated IP addresses and CIDRs (or loopback, linklocal, uniquelocal) (got ${JSON.stringify(value)})`,
    );
  });
});

describe('MLFLOW_UI_URL', () => {
  it('should leave the MLflow links off when unset or blank', () => {
    expect(load({}).mlflow.uiUrl).toBeNull();
    expect(load({ MLFLOW_UI_URL: '' }).mlflow.uiUrl).toBeNull();
  });

  it('should take an http(s) URL, trailing slashes trimmed', () => {
    expect(load({ MLFLOW_UI_URL: 'http://127.0.0.1:5000/' }).mlflow.uiUrl).toBe('http://127.0.0.1:5000');
    expect(load({ MLFLOW_UI_URL: 'https://mlflow.internal/prefix//' }).mlflow.uiUrl).toBe(
      'https://mlflow.internal/prefix',
    );
  });

  it.each([
    'mlflow.internal:5000',
    'ftp://mlflow.internal',
    'http://',
    'http:///x',
    'http://mlflow/#/',
    'http://mlflow/?o=1',
    'http://ml flow',
  ])('should refuse %p with one line naming the variable', (value) => {
    expect(() => load({ MLFLOW_UI_URL: value })).toThrow(
      `Invalid configuration: MLFLOW_UI_URL: expected an http(s) URL without ?query or #fragment (got ${JSON.stringify(value)})`,
    );
  });
});

describe('the train task: TRAINING_TIMEOUT_MARGIN_MINUTES, TRAINING_POOL, TRAINING_QUEUE, TRAINING_QUEUE_BY_PRESET', () => {
  it('should default to a 30-minute margin, no pool and no queue (Airflow’s default_pool and default queue)', () => {
    expect(load({}).airflow).toMatchObject({
      trainingTimeoutMarginMinutes: 30,
      trainingPool: null,
      trainingQueue: null,
      trainingQueueByPreset: {},
    });
  });

  it('should take a margin, a pool, a default queue and a queue per preset', () => {
    expect(
      load({
        TRAINING_TIMEOUT_MARGIN_MINUTES: '10',
        TRAINING_POOL: 'automl_training',
        TRAINING_QUEUE: 'train',
        TRAINING_QUEUE_BY_PRESET: ' best_quality=train-large, fast=train.small ',
      }).airflow,
    ).toMatchObject({
      trainingTimeoutMarginMinutes: 10,
      trainingPool: 'automl_training',
      trainingQueue: 'train',
      trainingQueueByPreset: { best_quality: 'train-large', fast: 'train.small' },
    });
  });

  it.each([
    ['TRAINING_TIMEOUT_MARGIN_MINUTES', '0', 'an integer number of minutes between 1 and 1440'],
    ['TRAINING_POOL', 'my pool', 'an Airflow pool name (letters, digits, _ . -)'],
    ['TRAINING_QUEUE', 'q;rm', 'an Airflow queue name (letters, digits, _ . -)'],
    [
      'TRAINING_QUEUE_BY_PRESET',
      'huge=train-large',
      'comma-separated preset=queue pairs (presets fast, balanced, best_quality; queues of letters, digits, _ . -)',
    ],
    [
      'TRAINING_QUEUE_BY_PRESET',
      'best_quality=',
      'comma-separated preset=queue pairs (presets fast, balanced, best_quality; queues of letters, digits, _ . -)',
    ],
  ])('should refuse %s=%p with one line naming the variable', (name, value, expected) => {
    expect(() => load({ [name]: value })).toThrow(
      `Invalid configuration: ${name}: expected ${expected} (got ${JSON.stringify(value)})`,
    );
  });
});

describe('the training pod: TRAINING_POD_NAMESPACE, TRAINING_POD_SERVICE_ACCOUNT, TRAINING_POD_SECRET', () => {
  it('should leave each to the provider when unset, and take Kubernetes names', () => {
    expect(load({}).airflow.trainingPod).toEqual({ namespace: null, service_account: null, secret: null });
    expect(
      load({
        TRAINING_POD_NAMESPACE: 'automl',
        TRAINING_POD_SERVICE_ACCOUNT: 'automl-trainer',
        TRAINING_POD_SECRET: 'automl.trainer-credentials',
      }).airflow.trainingPod,
    ).toEqual({ namespace: 'automl', service_account: 'automl-trainer', secret: 'automl.trainer-credentials' });
  });

  it.each([
    ['TRAINING_POD_NAMESPACE', 'Automl', 'a Kubernetes name (lower-case letters, digits, -, at most 63)'],
    ['TRAINING_POD_NAMESPACE', 'a.b', 'a Kubernetes name (lower-case letters, digits, -, at most 63)'],
    ['TRAINING_POD_SECRET', 'secret_1', 'a Kubernetes name (lower-case letters, digits, - and ., at most 253)'],
  ])('should refuse %s=%p', (name, value, expected) => {
    expect(() => load({ [name]: value })).toThrow(
      `Invalid configuration: ${name}: expected ${expected} (got ${JSON.stringify(value)})`,
    );
  });
});

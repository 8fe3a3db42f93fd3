import { RequestMethod } from '@nestjs/common';
import { MetadataScanner, ModulesContainer, Reflector } from '@nestjs/core';
import { METHOD_METADATA, PATH_METADATA } from '@nestjs/common/constants';
import { AUTH_METHODS } from '../../src/common/auth/auth.decorator';
import { startTestApp, TestApp } from '../utils/test-app';

/**
 * Every route's accepted credential kinds. A change here is a change of who
 * may call the API: review it as such.
 */
const EXPECTED: Record<string, string[]> = {
  'POST /automl/train/jobs': ['bearer', 'psk'],
  'GET /automl/train/jobs': ['bearer', 'psk'],
  'GET /automl/train/jobs/status': ['bearer', 'psk'],
  'GET /automl/train/jobs/:job_id': ['bearer', 'psk'],
  'PUT /automl/train/jobs/:job_id/status': ['psk'],
  'GET /automl/train/jobs/:job_id/history': ['bearer', 'psk'],
};

describe('route auth declarations', () => {
  let testApp: TestApp;

  beforeAll(async () => {
    testApp = await startTestApp();
  });

  afterAll(() => testApp.close());

  it('should declare the expected credential kinds on every route, and none may be undeclared', () => {
    const controllers = [...testApp.app.get(ModulesContainer).values()].flatMap((module) => [...module.controllers.values()]);
    const reflector = testApp.app.get(Reflector);
    const scanner = new MetadataScanner();
    const declared: Record<string, string[] | undefined> = {};
    for (const wrapper of controllers) {
      const instance = wrapper.instance as object;
      const prefix = String(Reflect.getMetadata(PATH_METADATA, wrapper.metatype as Function) ?? '');
      for (const name of scanner.getAllMethodNames(Object.getPrototypeOf(instance))) {
        const handler = (instance as Record<string, Function>)[name];
        const path = Reflect.getMetadata(PATH_METADATA, handler);
        if (path === undefined) continue;
        const method = RequestMethod[Reflect.getMetadata(METHOD_METADATA, handler) as number];
        const route = `${method} /${[prefix, path].filter((p) => p && p !== '/').join('/')}`;
        declared[route] = reflector.getAllAndOverride<string[]>(AUTH_METHODS, [handler, wrapper.metatype as Function]);
      }
    }
    expect(declared).toEqual(EXPECTED);
  });
});

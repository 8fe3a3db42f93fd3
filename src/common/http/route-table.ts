import { Injectable, OnApplicationBootstrap, RequestMethod } from '@nestjs/common';
import { METHOD_METADATA, PATH_METADATA } from '@nestjs/common/constants';
import { MetadataScanner, ModulesContainer } from '@nestjs/core';

export interface RouteEntry {
  method: string;
  /** Path relative to the global prefix, e.g. `automl/train/jobs/:job_id`. */
  path: string;
  handler: Function;
  controller: Function;
}

const GLOBAL_PREFIX = 'api';
/** Operational routes served at the root; the rest under AutomlTrainingModule's /api route path (see AppModule). */
const UNPREFIXED = /^(health\/|metrics$)/;

/**
 * Every route the controllers declare, read once at start. Lets the error
 * filter answer 405 (as FastAPI does) instead of 404 when a path exists but
 * not for the request's method.
 */
@Injectable()
export class RouteTable implements OnApplicationBootstrap {
  private entries: (RouteEntry & { pattern: RegExp })[] = [];

  constructor(private readonly modules: ModulesContainer) {}

  onApplicationBootstrap(): void {
    this.entries = this.collect().map((entry) => ({
      ...entry,
      pattern: toPattern(UNPREFIXED.test(entry.path) ? `/${entry.path}` : `/${GLOBAL_PREFIX}/${entry.path}`),
    }));
  }

  routes(): RouteEntry[] {
    return this.collect();
  }

  /** Methods allowed on `path`, or an empty list when no route has that path. */
  methodsFor(path: string): string[] {
    const methods = this.entries.filter((entry) => entry.pattern.test(path)).map((entry) => entry.method);
    return [...new Set(methods)];
  }

  private collect(): RouteEntry[] {
    const scanner = new MetadataScanner();
    const routes: RouteEntry[] = [];
    for (const module of this.modules.values()) {
      for (const wrapper of module.controllers.values()) {
        const controller = wrapper.metatype as Function;
        const prototype = controller.prototype as Record<string, Function>;
        const prefix = String(Reflect.getMetadata(PATH_METADATA, controller) ?? '');
        for (const name of scanner.getAllMethodNames(prototype)) {
          const handler = prototype[name];
          const path = Reflect.getMetadata(PATH_METADATA, handler) as string | undefined;
          if (path === undefined) continue;
          const method = RequestMethod[Reflect.getMetadata(METHOD_METADATA, handler) as number];
          routes.push({ method, path: [prefix, path].filter((p) => p && p !== '/').join('/'), handler, controller });
        }
      }
    }
    return routes;
  }
}

function toPattern(path: string): RegExp {
  const escaped = path
    .split('/')
    .map((segment) => (segment.startsWith(':') ? '[^/]+' : segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
    .join('/');
  return new RegExp(`^${escaped}/?$`, 'i');
}

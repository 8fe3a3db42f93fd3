import { Inject, Injectable } from '@nestjs/common';
import { PassportStrategy } from '@nestjs/passport';
import { hash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Request } from 'express';
import { Strategy } from 'passport-strategy';
import { APP_CONFIG, AppConfig } from '../../config/app.config';
import type { Principal } from './principal';

export const PSK_HEADER = 'authorization-psk';

type Verify = (key: string, done: (error: unknown, user?: Principal | false) => void) => void;

/** Passport strategy reading the `Authorization-PSK` header. */
class HeaderKeyStrategy extends Strategy {
  constructor(private readonly verify: Verify) {
    super();
  }

  override authenticate(request: Request): void {
    const key = request.headers[PSK_HEADER];
    if (typeof key !== 'string' || key.length === 0) return this.fail('missing', 401);
    this.verify(key, (error, user) => {
      if (error) return this.error(error as Error);
      if (!user) return this.fail('invalid', 401);
      this.success(user);
    });
  }
}

/**
 * Compares the presented key with every configured key (rotation) in constant
 * time: both sides are hashed (SHA-256, salted per process) first, so lengths
 * never leak and timingSafeEqual never sees buffers of different sizes, and
 * the loop never stops early. One one-shot hash per request (an HMAC object
 * per request cost twice as much).
 */
@Injectable()
export class PskStrategy extends PassportStrategy(HeaderKeyStrategy, 'psk') {
  private readonly salt = randomBytes(32);
  private readonly digests: Buffer[];

  constructor(@Inject(APP_CONFIG) config: AppConfig) {
    super();
    this.digests = config.auth.psks.map((key) => this.digest(key));
  }

  private digest(value: string): Buffer {
    return hash('sha256', Buffer.concat([this.salt, Buffer.from(value, 'utf8')]), 'buffer');
  }

  validate(key: string): Principal | false {
    const presented = this.digest(key);
    let matched = false;
    for (const digest of this.digests) matched = timingSafeEqual(presented, digest) || matched;
    return matched ? { kind: 'psk' } : false;
  }
}

import { generateKeyPairSync, KeyObject, randomUUID } from 'node:crypto';
import { createServer, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import jwt, { SignOptions } from 'jsonwebtoken';

interface SigningKey {
  kid: string;
  privateKey: KeyObject;
  publicKey: KeyObject;
}

export const REALM = 'rapid';
export const CLIENT_ID = 'automl-frontend';

/**
 * A Keycloak realm on 127.0.0.1: publishes a JWKS with real RS256 signing
 * keys (plus an RSA-OAEP `enc` key, as Keycloak does) at
 * /realms/rapid/protocol/openid-connect/certs, and signs access tokens shaped
 * like Keycloak's. Keys can be rotated; JWKS requests are counted.
 */
export class KeycloakDouble {
  private server!: Server;
  private keys: SigningKey[] = [];
  private readonly encryptionKey = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey;
  jwksRequests = 0;
  /** Delay before the JWKS is answered (a slow identity provider). */
  jwksDelayMs = 0;
  baseUrl = '';

  static async start(): Promise<KeycloakDouble> {
    const double = new KeycloakDouble();
    double.rotate();
    await double.listen();
    return double;
  }

  get issuer(): string {
    return `${this.baseUrl}/realms/${REALM}`;
  }

  /** Environment that points the service at this realm. */
  env(clientId: string | null = CLIENT_ID): Record<string, string> {
    return {
      KEYCLOAK_URL: this.baseUrl,
      KEYCLOAK_REALM: REALM,
      ...(clientId ? { KEYCLOAK_CLIENT_ID: clientId } : {}),
    };
  }

  /** Adds a new active signing key (older keys stay published, as passive keys do). */
  rotate(): string {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const kid = randomUUID();
    this.keys.unshift({ kid, privateKey, publicKey });
    return kid;
  }

  get activeKey(): SigningKey {
    return this.keys[0];
  }

  /** A Keycloak-shaped access token; `claims` override, `options` tweak the header or lifetime. */
  token(claims: Record<string, unknown> = {}, options: SignOptions & { key?: KeyObject } = {}): string {
    const { key, ...signOptions } = options;
    const now = Math.floor(Date.now() / 1000);
    const payload = {
      exp: now + 300,
      iat: now,
      jti: randomUUID(),
      iss: this.issuer,
      aud: 'account',
      sub: randomUUID(),
      typ: 'Bearer',
      azp: CLIENT_ID,
      scope: 'openid profile email',
      preferred_username: 'alice',
      realm_access: { roles: ['default-roles-rapid'] },
      ...claims,
    };
    return jwt.sign(payload, key ?? this.activeKey.privateKey, {
      algorithm: 'RS256',
      keyid: this.activeKey.kid,
      ...signOptions,
    });
  }

  publicKeyPem(): string {
    return this.activeKey.publicKey.export({ type: 'spki', format: 'pem' }).toString();
  }

  private jwks(): object {
    const signing = this.keys.map(({ kid, publicKey }) => ({
      ...(publicKey.export({ format: 'jwk' }) as object),
      kid,
      kty: 'RSA',
      alg: 'RS256',
      use: 'sig',
    }));
    const encryption = {
      ...(this.encryptionKey.export({ format: 'jwk' }) as object),
      kid: 'enc-key',
      alg: 'RSA-OAEP',
      use: 'enc',
    };
    return { keys: [...signing, encryption] };
  }

  private listen(): Promise<void> {
    this.server = createServer((req, res) => {
      if (req.url === `/realms/${REALM}/protocol/openid-connect/certs`) {
        this.jwksRequests++;
        setTimeout(() => {
          if (res.destroyed) return;
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify(this.jwks()));
        }, this.jwksDelayMs);
        return;
      }
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end('{"error":"not found"}');
    });
    return new Promise((resolve) =>
      this.server.listen(0, '127.0.0.1', () => {
        this.baseUrl = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
        resolve();
      }),
    );
  }

  stop(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

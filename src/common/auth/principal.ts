/** Who is calling. Mirrors the platform's auth methods (keycloak_token, general_psk). */
export type Principal =
  | { kind: 'psk' }
  | {
      kind: 'keycloak';
      subject: string;
      username: string | null;
      roles: string[];
      admin: boolean;
      /** Until when this service accepts the token (its exp plus the clock tolerance, ms since the epoch). */
      validUntil: number | null;
    };

/** The name recorded as the actor of a change. */
export function actorOf(principal: Principal): string {
  return principal.kind === 'psk' ? 'psk' : (principal.username ?? principal.subject);
}

/**
 * Object-level access (BOLA): the platform PSK and admin-role users reach every
 * job; any other bearer user only jobs whose owner is their username. Returns
 * the owner a caller is confined to, or null for "every owner".
 */
export function ownerScope(principal: Principal): string | null {
  if (principal.kind === 'psk' || principal.admin) return null;
  // A token with no username owns nothing: an owner can never equal this.
  return principal.username ?? '\u0000no-username';
}

export function canAccessOwner(principal: Principal, owner: string): boolean {
  const scope = ownerScope(principal);
  return scope === null || scope === owner;
}

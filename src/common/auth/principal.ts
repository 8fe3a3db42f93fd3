/** Who is calling. Mirrors the platform's auth methods (keycloak_token, general_psk). */
export type Principal =
  | { kind: 'psk' }
  | { kind: 'keycloak'; subject: string; username: string | null; roles: string[] };

/** The name recorded as the actor of a change. */
export function actorOf(principal: Principal): string {
  return principal.kind === 'psk' ? 'psk' : (principal.username ?? principal.subject);
}

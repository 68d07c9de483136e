import type { ChatApi } from '@chat/client';
import { devShapes } from '@chat/events';

const KEY = 'chat.session';

/** Who this tab is signed in as: per tab (sessionStorage), so two tabs can be two people. */
export type Session = { userId: string; token?: string };

export const loadSession = (): Session | null => {
  try {
    const raw = sessionStorage.getItem(KEY);
    const value: unknown = raw ? JSON.parse(raw) : null;
    return value && typeof (value as Session).userId === 'string' ? (value as Session) : null;
  } catch {
    return null;
  }
};

export const saveSession = (session: Session | null): void => {
  if (session) sessionStorage.setItem(KEY, JSON.stringify(session));
  else sessionStorage.removeItem(KEY);
};

/** The `sub` of a JWT (unverified: the server checks the token; this only names the user). */
export const subjectOf = (token: string): string | null => {
  try {
    const payload = token.split('.')[1] ?? '';
    const json = atob(payload.replace(/-/g, '+').replace(/_/g, '/'));
    const sub: unknown = (JSON.parse(json) as { sub?: unknown }).sub;
    return typeof sub === 'string' ? sub : null;
  } catch {
    return null;
  }
};

/**
 * The token provider of a session: a pasted token as is, or a development token (POST /v1/dev/token),
 * fetched again a minute before it expires, so reconnects after an hour still sign in.
 */
export const tokenSource = (anonymous: ChatApi, session: Session): (() => Promise<string>) => {
  if (session.token) {
    const token = session.token;
    return async () => token;
  }
  let cached: { token: string; expiresAt: number } | undefined;
  return async () => {
    if (!cached || cached.expiresAt - Date.now() < 60_000) {
      const { token, expiresAt } = await anonymous.devToken(session.userId);
      cached = { token, expiresAt: Date.parse(expiresAt) };
    }
    return cached.token;
  };
};

/** Whether this server offers development sign-in (the route is absent in production). */
export const devSignInAvailable = async (anonymous: ChatApi): Promise<boolean> =>
  (await anonymous.hasRoute(devShapes.devToken)) ?? true;

import { readFileSync } from 'node:fs';
import { RETRY, withRetry } from '@chat/retry';
import { type ConnectionOptions, connect, credsAuthenticator, type NatsConnection } from 'nats';
import { natsServers } from './config.js';

/** The NATS variables of `baseEnv`, as parsed. */
export type NatsEnv = {
  NATS_URL: string;
  NATS_USER?: string | undefined;
  NATS_PASSWORD?: string | undefined;
  NATS_TOKEN?: string | undefined;
  NATS_CREDS_FILE?: string | undefined;
  NATS_TLS_CA_FILE?: string | undefined;
  NATS_TLS_CERT_FILE?: string | undefined;
  NATS_TLS_KEY_FILE?: string | undefined;
};

/**
 * The connection options every service uses: servers, credentials and TLS from env. TLS is required
 * (not just taken when offered) as soon as a `tls://` URL or a TLS file is configured, so a
 * misconfigured server fails the connect instead of silently carrying credentials in clear text.
 */
export const natsConnectionOptions = (config: NatsEnv, name: string): ConnectionOptions => {
  const servers = natsServers(config.NATS_URL);
  const wantsTls =
    servers.some((s) => s.startsWith('tls://')) ||
    Boolean(config.NATS_TLS_CA_FILE || config.NATS_TLS_CERT_FILE);
  return {
    servers,
    name,
    ...(config.NATS_USER ? { user: config.NATS_USER, pass: config.NATS_PASSWORD ?? '' } : {}),
    ...(config.NATS_TOKEN ? { token: config.NATS_TOKEN } : {}),
    ...(config.NATS_CREDS_FILE
      ? { authenticator: credsAuthenticator(readFileSync(config.NATS_CREDS_FILE)) }
      : {}),
    ...(wantsTls
      ? {
          tls: {
            ...(config.NATS_TLS_CA_FILE ? { caFile: config.NATS_TLS_CA_FILE } : {}),
            ...(config.NATS_TLS_CERT_FILE ? { certFile: config.NATS_TLS_CERT_FILE } : {}),
            ...(config.NATS_TLS_KEY_FILE ? { keyFile: config.NATS_TLS_KEY_FILE } : {}),
          },
        }
      : {}),
  };
};

/**
 * Every service's NATS connection: credentials and TLS from env, reconnecting forever by default (a
 * NATS restart must not end a service). A NATS that refuses connections at start-up (not up yet, or
 * restarting) is waited for, so services started together with it, or restarted during its outage, do
 * not crash-loop; a refusal of the credentials or of TLS still fails the start at once, with its reason.
 * `options` adds or overrides client tuning, never credentials.
 */
export const connectNats = (
  config: NatsEnv,
  name: string,
  options: Omit<ConnectionOptions, 'servers' | 'user' | 'pass' | 'token' | 'authenticator' | 'tls'> = {},
): Promise<NatsConnection> =>
  withRetry(
    RETRY.dependency,
    () => connect({ maxReconnectAttempts: -1, ...options, ...natsConnectionOptions(config, name) }),
    { retryable: (error) => (error as { code?: unknown }).code === 'CONNECTION_REFUSED' },
  );

import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  authEnv,
  authEnvChecks,
  baseEnv,
  DEV_DATA_KEY_MASTER,
  DEV_JWT_SECRET,
  dataKeyEnv,
  dataKeyEnvChecks,
  loadConfig,
  natsEnvChecks,
  natsServers,
  parseDataKeyMaster,
  portEnv,
} from './config.js';
import { redactUrl } from './logger.js';
import { runChecks } from './ops-server.js';

// Composed as the services compose theirs.
const schema = z
  .object({ ...baseEnv, ...authEnv, PORT: portEnv(3000) })
  .superRefine(natsEnvChecks)
  .superRefine(authEnvChecks);

describe('loadConfig', () => {
  it('applies local defaults and freezes the result', () => {
    const config = loadConfig(schema, {});
    expect(config.PORT).toBe(3000);
    expect(config.NATS_SUBJECT_PREFIX).toBe('chat');
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('names every bad variable', () => {
    expect(() => loadConfig(schema, { PORT: 'eighty', NATS_SUBJECT_PREFIX: 'has space' })).toThrow(
      expect.objectContaining({
        name: 'ConfigError',
        message: expect.stringMatching(/PORT[\s\S]*NATS_SUBJECT_PREFIX|NATS_SUBJECT_PREFIX[\s\S]*PORT/),
      }),
    );
  });

  it('splits ALLOWED_ORIGINS', () => {
    expect(
      loadConfig(schema, { ALLOWED_ORIGINS: 'https://a.example, https://b.example' }).ALLOWED_ORIGINS,
    ).toEqual(['https://a.example', 'https://b.example']);
  });
});

describe('production refusals, through loadConfig', () => {
  const strong = 'x'.repeat(32);
  const origins = 'https://app.example';

  it('refuses a missing ALLOWED_ORIGINS when the key is absent from the env', () => {
    expect(() => loadConfig(schema, { NODE_ENV: 'production', JWT_SECRET: strong })).toThrow(
      /ALLOWED_ORIGINS: required in production/,
    );
    expect(() =>
      loadConfig(schema, { NODE_ENV: 'production', JWT_SECRET: strong, ALLOWED_ORIGINS: ' , ' }),
    ).toThrow(/ALLOWED_ORIGINS/);
  });

  it('refuses the development secret, given or defaulted', () => {
    expect(() => loadConfig(schema, { NODE_ENV: 'production', ALLOWED_ORIGINS: origins })).toThrow(
      /JWT_SECRET: the development secret is refused/,
    );
    expect(() =>
      loadConfig(schema, { NODE_ENV: 'production', ALLOWED_ORIGINS: origins, JWT_SECRET: DEV_JWT_SECRET }),
    ).toThrow(/JWT_SECRET/);
  });

  it('accepts a production configuration; JWKS mode needs no secret', () => {
    expect(
      loadConfig(schema, { NODE_ENV: 'production', JWT_SECRET: strong, ALLOWED_ORIGINS: origins })
        .ALLOWED_ORIGINS,
    ).toEqual([origins]);
    expect(() =>
      loadConfig(schema, {
        NODE_ENV: 'production',
        JWKS_URL: 'https://idp.example/.well-known/jwks.json',
        ALLOWED_ORIGINS: origins,
      }),
    ).not.toThrow();
  });

  it('keeps development defaults outside production', () => {
    expect(loadConfig(schema, {}).JWT_SECRET).toBe(DEV_JWT_SECRET);
    expect(loadConfig(schema, { NODE_ENV: 'test' }).ALLOWED_ORIGINS).toBeUndefined();
  });
});

describe('NATS credentials', () => {
  it('wants exactly one complete way to authenticate, and cert with key', () => {
    expect(() => loadConfig(schema, { NATS_USER: 'gw' })).toThrow(/NATS_PASSWORD: required with NATS_USER/);
    expect(() => loadConfig(schema, { NATS_USER: 'gw', NATS_PASSWORD: 'p', NATS_TOKEN: 't' })).toThrow(
      /set only one/,
    );
    expect(() => loadConfig(schema, { NATS_TLS_CERT_FILE: '/c.pem' })).toThrow(/NATS_TLS_KEY_FILE/);
    const config = loadConfig(schema, { NATS_USER: 'gw', NATS_PASSWORD: 'p', NATS_TLS_CA_FILE: '' });
    expect([config.NATS_USER, config.NATS_PASSWORD, config.NATS_TLS_CA_FILE]).toEqual(['gw', 'p', undefined]);
  });
});

describe('redactUrl', () => {
  it('removes tokens from query strings', () => {
    expect(redactUrl('/v1/ws?access_token=abc.def.ghi&x=1')).toBe('/v1/ws?access_token=[REDACTED]&x=1');
    expect(redactUrl('/v1/ws?x=1&token=secret')).toBe('/v1/ws?x=1&token=[REDACTED]');
  });
});

describe('runChecks', () => {
  it('reports which dependency failed', async () => {
    const result = await runChecks({
      postgres: async () => {},
      nats: async () => Promise.reject(new Error('connection refused')),
    });
    expect(result).toEqual({ ok: false, results: { postgres: 'ok', nats: 'connection refused' } });
  });
});

describe('natsServers', () => {
  it('splits a cluster list', () => {
    expect(natsServers('nats://a:4222, nats://b:4222,')).toEqual(['nats://a:4222', 'nats://b:4222']);
  });
});

describe('DATA_KEY_MASTER', () => {
  const keys = z.object({ ...baseEnv, ...dataKeyEnv }).superRefine(dataKeyEnvChecks);
  const base64 = Buffer.alloc(32, 9).toString('base64');

  it('takes 32 bytes as base64 or hex, and nothing else', () => {
    expect(parseDataKeyMaster(base64)).toEqual(Buffer.alloc(32, 9));
    expect(parseDataKeyMaster('0f'.repeat(32))).toEqual(Buffer.alloc(32, 15));
    for (const bad of ['', 'short', Buffer.alloc(31).toString('base64'), '0f'.repeat(31), 'zz'.repeat(32)])
      expect(parseDataKeyMaster(bad), bad).toBeNull();
    expect(() => loadConfig(keys, { DATA_KEY_MASTER: 'short' })).toThrow(/DATA_KEY_MASTER: must be 32 bytes/);
  });

  it('refuses the development key in production, unset or given (also as hex); takes it elsewhere', () => {
    expect(() => loadConfig(keys, { NODE_ENV: 'production' })).toThrow(/DATA_KEY_MASTER: the development/);
    const devHex = (parseDataKeyMaster(DEV_DATA_KEY_MASTER) as Buffer).toString('hex');
    expect(() => loadConfig(keys, { NODE_ENV: 'production', DATA_KEY_MASTER: devHex })).toThrow(
      /DATA_KEY_MASTER/,
    );
    expect(loadConfig(keys, { NODE_ENV: 'production', DATA_KEY_MASTER: base64 }).DATA_KEY_MASTER).toBe(
      base64,
    );
    expect(loadConfig(keys, {}).DATA_KEY_MASTER).toBe(DEV_DATA_KEY_MASTER);
  });
});

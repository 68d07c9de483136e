import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  assertProductionSafe,
  authEnv,
  baseEnv,
  ConfigError,
  DEV_JWT_SECRET,
  loadConfig,
  natsServers,
  portEnv,
} from './config.js';
import { redactUrl } from './logger.js';
import { runChecks } from './ops-server.js';

const schema = z.object({ ...baseEnv, ...authEnv, PORT: portEnv(3000) });

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

describe('assertProductionSafe', () => {
  it('refuses the development secret and a missing origin list in production', () => {
    expect(() =>
      assertProductionSafe({
        NODE_ENV: 'production',
        JWT_SECRET: DEV_JWT_SECRET,
        ALLOWED_ORIGINS: ['https://a'],
      }),
    ).toThrow(/JWT_SECRET/);
    expect(() =>
      assertProductionSafe({
        NODE_ENV: 'production',
        JWT_SECRET: 'x'.repeat(32),
        ALLOWED_ORIGINS: undefined,
      }),
    ).toThrow(ConfigError);
    expect(() =>
      assertProductionSafe({
        NODE_ENV: 'production',
        JWT_SECRET: 'x'.repeat(32),
        ALLOWED_ORIGINS: ['https://a'],
      }),
    ).not.toThrow();
    expect(() =>
      assertProductionSafe({
        NODE_ENV: 'development',
        JWT_SECRET: DEV_JWT_SECRET,
        ALLOWED_ORIGINS: undefined,
      }),
    ).not.toThrow();
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

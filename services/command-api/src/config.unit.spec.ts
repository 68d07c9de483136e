import { livePublisher } from '@chat/platform';
import { describe, expect, it } from 'vitest';
import { readConfig } from './config.js';

describe('readConfig in production', () => {
  const strong = 'x'.repeat(32);

  it('refuses a missing ALLOWED_ORIGINS (the key absent from the env) and the development secret', () => {
    expect(() => readConfig({ NODE_ENV: 'production', JWT_SECRET: strong })).toThrow(/ALLOWED_ORIGINS/);
    expect(() => readConfig({ NODE_ENV: 'production', ALLOWED_ORIGINS: 'https://app.example' })).toThrow(
      /JWT_SECRET/,
    );
    const production = { NODE_ENV: 'production', JWT_SECRET: strong, ALLOWED_ORIGINS: 'https://app.example' };
    // The data keys' master key: refused unset (the development default), taken as 32 bytes of base64.
    expect(() => readConfig(production)).toThrow(/DATA_KEY_MASTER: the development master key is refused/);
    expect(
      readConfig({ ...production, DATA_KEY_MASTER: Buffer.alloc(32, 7).toString('base64') }).NODE_ENV,
    ).toBe('production');
  });
});

describe('LIVE_PUBLISH_FROM', () => {
  it('defaults to the command-api on Postgres and to the relay on EventStoreDB, and refuses the command-api with EventStoreDB', () => {
    expect(livePublisher(readConfig({}))).toBe('command-api');
    expect(livePublisher(readConfig({ EVENTSTORE_URL: 'esdb://127.0.0.1:2113?tls=false' }))).toBe('relay');
    expect(livePublisher(readConfig({ LIVE_PUBLISH_FROM: 'relay' }))).toBe('relay');
    expect(() =>
      readConfig({ LIVE_PUBLISH_FROM: 'command-api', EVENTSTORE_URL: 'esdb://127.0.0.1:2113?tls=false' }),
    ).toThrow(/LIVE_PUBLISH_FROM: command-api needs the Postgres event store/);
  });
});

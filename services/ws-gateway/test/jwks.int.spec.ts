import { migrateReadModels } from '@chat/db';
import { migrateEventStore } from '@chat/eventstore';
import { createLogger, DEV_JWT_SECRET } from '@chat/platform';
import {
  createTestDatabase,
  type JwksIssuer,
  jwksTokenCases,
  natsUrl,
  startJwksServer,
  type TestDatabase,
  testSubjectPrefix,
} from '@chat/testkit';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { loadGatewayConfig } from '../src/config.js';
import { type Gateway, startGateway } from '../src/gateway.js';

const issuer = 'https://idp.test';
const audience = 'chat';
let database: TestDatabase;
let idp: JwksIssuer;
let gateway: Gateway;

beforeAll(async () => {
  database = await createTestDatabase('gwjwks');
  await migrateEventStore(database.url);
  const pool = new pg.Pool({ connectionString: database.url, max: 1 });
  await migrateReadModels(pool);
  await pool.end();
  idp = await startJwksServer();
  gateway = await startGateway(
    // JWT_SECRET left at its default, as an operator who only set JWKS_URL would.
    loadGatewayConfig({
      DATABASE_URL: database.url,
      NATS_URL: natsUrl(),
      NATS_SUBJECT_PREFIX: testSubjectPrefix(),
      HOST: '127.0.0.1',
      PORT: '0',
      JWKS_URL: idp.url,
      JWT_ISSUER: issuer,
      JWT_AUDIENCE: audience,
    }),
    createLogger('ws-gateway-test', 'silent'),
  );
});

afterAll(async () => {
  await gateway?.stop();
  await idp?.close();
  await database?.drop();
});

/** The upgrade's outcome: the first frame's type when a socket opened, else the HTTP status. */
const upgrade = (token: string) =>
  new Promise<string | number>((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${gateway.port}/v1/ws?access_token=${token}`);
    ws.once('message', (data) => {
      resolve(JSON.parse(String(data)).type);
      ws.close();
    });
    ws.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      ws.terminate();
    });
    ws.once('error', () => resolve(-1));
  });

describe('ws-gateway in JWKS mode', () => {
  it('accepts only asymmetric tokens from the JWKS: HS256 (even with the development secret), alg:none, forged, wrong iss/aud and expired beyond the 5 s leeway get 401', async () => {
    const cases = await jwksTokenCases(idp, 'alice', { issuer, audience }, DEV_JWT_SECRET);
    for (const [what, token] of Object.entries(cases.refused)) expect(await upgrade(token), what).toBe(401);
    for (const [what, token] of Object.entries(cases.accepted))
      expect(await upgrade(token), what).toBe('hello');
  });
});

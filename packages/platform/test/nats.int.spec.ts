import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type NatsServerProcess, startNatsServer } from '@chat/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectNats, type NatsEnv, natsConnectionOptions } from '../src/nats.js';

const hasOpenssl = (() => {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

describe('natsConnectionOptions', () => {
  it('maps env to client options; tls:// or a TLS file requires TLS', () => {
    expect(natsConnectionOptions({ NATS_URL: 'nats://a:4222' }, 'svc')).toEqual({
      servers: ['nats://a:4222'],
      name: 'svc',
    });
    expect(
      natsConnectionOptions({ NATS_URL: 'tls://a:4222', NATS_USER: 'gw', NATS_PASSWORD: 'pw' }, 'svc'),
    ).toEqual({ servers: ['tls://a:4222'], name: 'svc', user: 'gw', pass: 'pw', tls: {} });
    expect(
      natsConnectionOptions({ NATS_URL: 'nats://a', NATS_TOKEN: 't', NATS_TLS_CA_FILE: '/ca.pem' }, 'svc'),
    ).toMatchObject({ token: 't', tls: { caFile: '/ca.pem' } });
  });
});

// A private nats-server with TLS (client certificates verified) and token authentication.
describe.skipIf(!hasOpenssl)('connectNats against a TLS server with a token', () => {
  let dir: string;
  let server: NatsServerProcess;
  const token = 'tokentokentoken123';
  const file = (name: string) => join(dir, name);

  const openssl = (args: string) =>
    execFileSync(
      'openssl',
      args.split(' ').map((a) => a.replaceAll('{dir}', dir)),
      { stdio: 'ignore' },
    );
  const newKey = (name: string) =>
    `-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout {dir}/${name}-key.pem`;
  /** A key and a certificate signed by the test CA (`san.cnf` adds the server's address). */
  const issue = (name: string, subject: string, extensions = '') => {
    openssl(`req ${newKey(name)} -out {dir}/${name}.csr -subj ${subject}`);
    openssl(
      `x509 -req -in {dir}/${name}.csr -CA {dir}/ca.pem -CAkey {dir}/ca-key.pem -CAcreateserial ` +
        `-out {dir}/${name}-cert.pem -days 1${extensions}`,
    );
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'chat-nats-tls-'));
    openssl(`req -x509 ${newKey('ca')} -out {dir}/ca.pem -days 1 -subj /CN=test-ca`);
    await writeFile(file('san.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
    issue('server', '/CN=localhost', ' -extfile {dir}/san.cnf');
    issue('client', '/CN=chat-service');
    await writeFile(
      file('server.conf'),
      `tls {\n  cert_file: "${file('server-cert.pem')}"\n  key_file: "${file('server-key.pem')}"\n` +
        `  ca_file: "${file('ca.pem')}"\n  verify: true\n}\nauthorization { token: $CHAT_TEST_NATS_TOKEN }\n`,
    );
    server = await startNatsServer({
      args: ['-c', file('server.conf')],
      env: { CHAT_TEST_NATS_TOKEN: token },
    });
  });

  afterAll(async () => {
    await server?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const env = (): NatsEnv & Record<string, string> => ({
    NATS_URL: `tls://127.0.0.1:${server.port}`,
    NATS_TOKEN: token,
    NATS_TLS_CA_FILE: file('ca.pem'),
    NATS_TLS_CERT_FILE: file('client-cert.pem'),
    NATS_TLS_KEY_FILE: file('client-key.pem'),
  });
  const attempt = async (config: NatsEnv) => {
    const nc = await connectNats(config, 'tls-test', { maxReconnectAttempts: 0, timeout: 3000 });
    await nc.flush();
    await nc.close();
  };

  it('connects with the CA, a client certificate and the token', async () => {
    await expect(attempt(env())).resolves.toBeUndefined();
  });

  it('is refused without the client certificate, with a wrong token, or without the CA', async () => {
    const { NATS_TLS_CERT_FILE: _c, NATS_TLS_KEY_FILE: _k, ...noClientCert } = env();
    await expect(attempt(noClientCert)).rejects.toThrow();
    await expect(attempt({ ...env(), NATS_TOKEN: 'wrong-token-wrong' })).rejects.toThrow();
    const { NATS_TLS_CA_FILE: _ca, ...noCa } = env();
    await expect(attempt(noCa)).rejects.toThrow();
  });
});

describe('connectNats at start-up', () => {
  it('waits for a NATS server that is not up yet instead of failing the start', async () => {
    const server = await startNatsServer();
    await server.kill();
    try {
      const connecting = connectNats({ NATS_URL: `nats://127.0.0.1:${server.port}` }, 'late-start', {
        reconnectTimeWait: 100,
      });
      const outcome = Promise.race([
        connecting.then(() => 'connected'),
        new Promise((r) => setTimeout(r, 500, 'still waiting')),
      ]);
      expect(await outcome).toBe('still waiting');
      await server.start();
      const nc = await connecting;
      const sub = nc.subscribe('late.start', { max: 1 });
      nc.publish('late.start', 'hello');
      for await (const m of sub) expect(m.string()).toBe('hello');
      await nc.close();
    } finally {
      await server.stop();
    }
  });
});

import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, startHarness } from './harness.js';

// The OpenAPI document is part of the product: it must pass `redocly lint` (the recommended rules, as
// configured in ../redocly.yaml) with no error and no warning, so generated clients and API portals
// take it as it is.
const config = new URL('../redocly.yaml', import.meta.url).pathname;
const redoclyBin = join(
  dirname(createRequire(import.meta.url).resolve('@redocly/cli/package.json')),
  'bin/cli.js',
);

type LintProblem = { ruleId: string; severity: string; message: string; location: { pointer: string }[] };

let h: Harness;
let dir: string;
beforeAll(async () => {
  h = await startHarness('openapi');
  dir = await mkdtemp(join(tmpdir(), 'chat-openapi-'));
});
afterAll(async () => {
  await h?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('the OpenAPI document', () => {
  it('passes `redocly lint` with no error and no warning', async () => {
    const doc = await h.app.inject({ method: 'GET', url: '/docs/json' });
    const file = join(dir, 'openapi.json');
    await writeFile(file, doc.body);
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [redoclyBin, 'lint', '--format=json', `--config=${config}`, file],
      {
        env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' },
        maxBuffer: 64 * 1024 * 1024,
      },
    ).catch((err: { stdout?: string }) => ({ stdout: err.stdout ?? '' }));
    const { problems } = JSON.parse(stdout) as { problems: LintProblem[] };
    const found = problems.map((p) => `${p.severity} ${p.ruleId} at ${p.location[0]?.pointer}: ${p.message}`);
    expect(found).toEqual([]);
  });
});

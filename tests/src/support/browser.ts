import { execFile } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

/**
 * Debian's Chromium (installed by infra/ensure-chromium.sh when missing), or `CHROMIUM_PATH`; a reason
 * instead when there is none, for the browser tests to print as they skip.
 */
export const findChromium = (): { path: string } | { reason: string } => {
  const path = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
  try {
    accessSync(path, constants.X_OK);
    return { path };
  } catch {
    return {
      reason: `no Chromium at ${path} (infra/ensure-chromium.sh installs it as root; or set CHROMIUM_PATH)`,
    };
  }
};

/**
 * Headless Chromium quiet on a closed network: no background connections (updates, sync, safe
 * browsing), which would otherwise be refused by the dozen. Playwright gives every launch a fresh,
 * empty profile directory of its own.
 */
export const launchChromium = (executablePath: string): Promise<Browser> =>
  chromium.launch({
    executablePath,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });

export type ConsoleEntry = { at: number; type: string; text: string };

/** A page that records every console error and uncaught page error, with when it happened. */
export const openPage = async (context: BrowserContext): Promise<{ page: Page; errors: ConsoleEntry[] }> => {
  const page = await context.newPage();
  const errors: ConsoleEntry[] = [];
  page.on('console', (msg) => {
    if (msg.type() === 'error') errors.push({ at: Date.now(), type: 'console', text: msg.text() });
  });
  page.on('pageerror', (err) => errors.push({ at: Date.now(), type: 'pageerror', text: String(err) }));
  return { page, errors };
};

/** Builds the web client (vite) into apps/web/dist, as `npm start` does; returns that folder. */
export const buildWebClient = async (): Promise<string> => {
  const app = resolve(REPO_ROOT, 'apps/web');
  await promisify(execFile)(resolve(app, 'node_modules/.bin/vite'), ['build', '--logLevel', 'warn'], {
    cwd: app,
    env: { ...process.env, NODE_ENV: 'production' },
  });
  return resolve(app, 'dist');
};

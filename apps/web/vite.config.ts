import { defineConfig } from 'vite';

// `pnpm --filter @chat/web dev` serves the page with hot reload and forwards the API (and the page's
// config) to a command-api on :3000, so the page still talks to its own origin as in production.
const api = process.env.CHAT_API_URL ?? 'http://127.0.0.1:3000';

export default defineConfig({
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: { target: 'es2022', sourcemap: true },
  server: { proxy: { '/v1': api, '/config.json': api, '/docs': api } },
});

import './zod-config.js';
import { webClientConfigSchema } from '@chat/events';
import { render } from 'preact';
import { App, type AppConfig } from './app.js';
import './styles.css';

/** Where the API and the gateway are: the API is this page's origin; the gateway URL comes from it. */
const loadConfig = async (): Promise<AppConfig> => {
  const fallback = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.hostname}:3001/v1/ws`;
  try {
    const response = await fetch('/config.json', { headers: { accept: 'application/json' } });
    const parsed = webClientConfigSchema.safeParse(response.ok ? await response.json() : null);
    return { apiUrl: '', gatewayUrl: parsed.success ? parsed.data.gatewayUrl : fallback };
  } catch {
    return { apiUrl: '', gatewayUrl: fallback };
  }
};

const root = document.getElementById('app');
if (root) void loadConfig().then((config) => render(<App config={config} />, root));

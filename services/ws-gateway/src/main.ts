import { createLogger, nameDatabaseSessions, onShutdown } from '@chat/platform';
import { loadGatewayConfig } from './config.js';
import { startGateway } from './gateway.js';

nameDatabaseSessions('ws-gateway');
const config = loadGatewayConfig();
const logger = createLogger('ws-gateway', config.LOG_LEVEL);
const gateway = await startGateway(config, logger);
onShutdown(logger, () => gateway.stop());

import { createLogger, onShutdown } from '@chat/platform';
import { loadGatewayConfig } from './config.js';
import { startGateway } from './gateway.js';

const config = loadGatewayConfig();
const logger = createLogger('ws-gateway', config.LOG_LEVEL);
const gateway = await startGateway(config, logger);
onShutdown(logger, () => gateway.stop());

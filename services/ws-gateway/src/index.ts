export { tokenFromUpgrade } from './auth/token.js';
export { floodCheck } from './client/flood.js';
export { type GatewayConfig, gatewayEnv, loadGatewayConfig } from './config.js';
export { type Gateway, startGateway } from './gateway.js';

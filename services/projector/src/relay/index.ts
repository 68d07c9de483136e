export { createRelay, type Relay, type RelayDeps } from './relay.js';
export { routeEvent } from './routing.js';

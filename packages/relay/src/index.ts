export { createRelay, type Relay, type RelayDeps } from './relay.js';
export { type Publication, routeEvent } from './routing.js';

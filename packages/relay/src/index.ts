export { createRelay, RELAYED_STREAMS, type Relay, type RelayDeps } from './relay.js';
export { type Publication, routeEvent } from './routing.js';

export { createRelay, headsOf, RELAYED_STREAMS, type Relay, type RelayDeps } from './relay.js';
export { type Publication, type RouteOptions, routeEvent } from './routing.js';

// What the Socket.IO reference server (bench/socketio-server.ts) and the bench agree on, in a module
// of its own so that neither loads the other.

/** The Redis set holding a user's conversation ids (seeded by the bench, read on connect). */
export const membershipKey = (userId: string): string => `user:${userId}:conversations`;

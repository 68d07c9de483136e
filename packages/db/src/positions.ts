/** Mirrors @chat/eventstore's START_POSITION (32 hex zeros) without depending on the store package. */
export const START_POSITION_TEXT = '0'.repeat(32);

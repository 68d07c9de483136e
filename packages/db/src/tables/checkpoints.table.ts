import type { Timestamp } from './conversations.table.js';

/** Position of the last event a projection applied, written in the same transaction as its effects. */
export interface CheckpointsTable {
  name: string;
  position: string;
  updated_at: Timestamp;
}

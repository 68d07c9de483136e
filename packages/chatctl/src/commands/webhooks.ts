import type { DeliveryRow, DeliveryState } from '@chat/notifications';
import { UsageError } from '../filters.js';

const DELIVERY_STATES: readonly DeliveryState[] = ['pending', 'retrying', 'delivered', 'dead'];

/** The `--status` of `webhooks list`, checked. */
export const parseDeliveryState = (value: string | undefined): DeliveryState | undefined => {
  if (value === undefined) return undefined;
  const state = DELIVERY_STATES.find((s) => s === value);
  if (state === undefined) throw new UsageError(`--status: one of ${DELIVERY_STATES.join(', ')}`);
  return state;
};

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const isDeliveryId = (value: string): boolean => UUID.test(value);

export const formatDeliveries = (rows: readonly DeliveryRow[], limit: number): string => {
  if (rows.length === 0) return 'no webhook deliveries\n';
  const lines: string[] = [];
  for (const d of rows) {
    const when =
      d.status === 'pending'
        ? `next attempt ${d.nextAttemptAt?.toISOString()}`
        : `${d.status === 'dead' ? 'dead-lettered' : 'delivered'} ${d.finishedAt?.toISOString()}`;
    lines.push(
      `${d.status.padEnd(9)} ${d.deliveryId}  to ${d.recipientId}, ${d.attempts} attempts, created ${d.createdAt.toISOString()}, ${when}`,
    );
    if (d.lastError) lines.push(`  ${d.lastError.split('\n').join('\n  ')}`);
  }
  if (rows.length === limit) lines.push(`(the first ${limit}; --limit for more)`);
  return `${lines.join('\n')}\n`;
};

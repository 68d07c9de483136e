import { listCheckpoints, listQuarantine } from '@chat/consumer';
import { createReadModelDb } from '@chat/db';
import type { EventStore } from '@chat/eventstore';
import { type OutboxStats, outboxStats } from '@chat/notifications';
import type pg from 'pg';

export type CheckpointStats = {
  /** The consumer (read_models, relay, notifier) or a running rebuild (read_models:rebuild). */
  name: string;
  position: string;
  /** Events after the checkpoint (capped at `lagCap`). */
  lagEvents: number;
  lagCapped: boolean;
  /** Age of the oldest event the consumer has not applied yet; 0 when caught up. */
  lagMs: number;
  /** Events the consumer stepped over because it cannot apply them (`chatctl quarantine list`). */
  quarantined: number;
};

export type Stats = {
  headPosition: string;
  eventsByType: Record<string, number> | null;
  readModels: {
    conversations: number;
    activeMembers: number;
    messages: number;
    deletedMessages: number;
  } | null;
  checkpoints: CheckpointStats[];
  /** The notifier's webhook outbox; null where the notifier schema does not exist. */
  webhookOutbox: OutboxStats | null;
};

const LAG_CAP = 10_000;

/** Counts, positions and lags; every consumer's checkpoint is a row of `consumers.checkpoints`. */
export const collectStats = async (store: EventStore, pool: pg.Pool): Promise<Stats> => {
  const headPosition = await store.headPosition();
  // Only the Postgres store can count cheaply; on EventStoreDB this is null.
  const eventsByType = await pool
    .query<{ type: string; n: string }>(
      'SELECT type, count(*) AS n FROM es.events GROUP BY type ORDER BY type',
    )
    .then(
      (r) => Object.fromEntries(r.rows.map((row) => [row.type, Number(row.n)])),
      () => null,
    );
  const db = createReadModelDb(pool);
  const readModels = await Promise.all([
    db
      .selectFrom('conversations')
      .select((eb) => eb.fn.countAll<string>().as('n'))
      .executeTakeFirst(),
    db
      .selectFrom('members')
      .select((eb) => eb.fn.countAll<string>().as('n'))
      .where('active', '=', true)
      .executeTakeFirst(),
    db
      .selectFrom('messages')
      .select((eb) => eb.fn.countAll<string>().as('n'))
      .executeTakeFirst(),
    db
      .selectFrom('messages')
      .select((eb) => eb.fn.countAll<string>().as('n'))
      .where('deleted', '=', true)
      .executeTakeFirst(),
  ]).then(
    ([c, m, msg, d]) => ({
      conversations: Number(c?.n ?? 0),
      activeMembers: Number(m?.n ?? 0),
      messages: Number(msg?.n ?? 0),
      deletedMessages: Number(d?.n ?? 0),
    }),
    () => null,
  );
  const quarantined = new Map<string, number>();
  for (const q of await listQuarantine(pool))
    quarantined.set(q.consumer, (quarantined.get(q.consumer) ?? 0) + 1);
  const checkpoints: CheckpointStats[] = [];
  for (const row of await listCheckpoints(pool)) {
    const behind = await store.readAll({ fromPosition: row.position, maxCount: LAG_CAP });
    const oldest = behind[0];
    checkpoints.push({
      name: row.name,
      position: row.position,
      lagEvents: behind.length,
      lagCapped: behind.length === LAG_CAP,
      lagMs: oldest ? Math.max(0, Date.now() - Date.parse(oldest.occurredAt)) : 0,
      quarantined: quarantined.get(row.name) ?? 0,
    });
  }
  const webhookOutbox = await outboxStats(pool).catch(() => null);
  return { headPosition, eventsByType, readModels, checkpoints, webhookOutbox };
};

export const formatStats = (s: Stats): string => {
  const lines = [`head position  ${s.headPosition}`];
  if (s.eventsByType) {
    const total = Object.values(s.eventsByType).reduce((a, b) => a + b, 0);
    lines.push(`events         ${total}`);
    for (const [type, n] of Object.entries(s.eventsByType)) lines.push(`  ${type.padEnd(22)} ${n}`);
  }
  if (s.readModels) {
    lines.push(
      `read models    ${s.readModels.conversations} conversations, ${s.readModels.activeMembers} memberships, ${s.readModels.messages} messages (${s.readModels.deletedMessages} deleted)`,
    );
  }
  lines.push('checkpoints');
  for (const c of s.checkpoints) {
    lines.push(
      `  ${c.name.padEnd(22)} ${c.position}  lag ${c.lagEvents}${c.lagCapped ? '+' : ''} events, ${c.lagMs} ms${c.quarantined > 0 ? `, ${c.quarantined} quarantined` : ''}`,
    );
  }
  if (s.webhookOutbox) {
    const o = s.webhookOutbox;
    lines.push(
      `webhook outbox ${o.pending} pending (${o.retrying} retrying, oldest ${Math.round(o.oldestPendingSeconds)} s), ${o.delivered} delivered, ${o.deadLettered} dead-lettered`,
    );
  }
  return `${lines.join('\n')}\n`;
};

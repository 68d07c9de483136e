import { blocksInvolving, membershipsAtCheckpoint, type ReadModelDb } from '@chat/db';
import { type EventStore, START_POSITION } from '@chat/eventstore';
import type { Block, Membership, MembershipSource } from '../hub/hub.js';
import { MembershipTail } from './tail.js';

/**
 * The users' conversations as of the log head: the read model's memberships and the checkpoint they
 * are at (one statement, so one snapshot), then the membership events between that checkpoint and the
 * head from the gateway's shared `MembershipTail`, applied in log order. The result is as of
 * max(checkpoint, head). The hub registered the users before asking: a membership event the relay
 * publishes later reaches it on the user subject; one published earlier is at or below the head read
 * here. So a conversation created a moment before the connect is never missed, however far the
 * projector lags. One call serves a whole connect burst (one head, one statement, one tail read).
 */
export const readModelMembership = (db: ReadModelDb, store: EventStore): MembershipSource => {
  const tail = new MembershipTail(store, START_POSITION);
  return {
    async membershipsOf(userIds) {
      const head = await store.headPosition();
      const { checkpoint, members } = await membershipsAtCheckpoint(db, userIds);
      // Read after the checkpoint, so at or past it; the tail's blocks after the checkpoint then bring
      // it to the head (one already applied is set again), and news past the head comes on user subjects.
      const pairs = new Map<string, { userId: string; blockedUserId: string }>();
      for (const b of await blocksInvolving(db, userIds)) pairs.set(`${b.userId}\n${b.blockedUserId}`, b);
      const asked = new Set(userIds);
      const byUser = new Map<string, Map<string, number>>();
      const of = (userId: string) => {
        let m = byUser.get(userId);
        if (!m) {
          m = new Map();
          byUser.set(userId, m);
        }
        return m;
      };
      for (const m of members) of(m.userId).set(m.conversationId, m.joinedSeq);
      const changes = await tail.since(checkpoint, head);
      if (changes.length > 0) {
        for (const change of changes) {
          if (change.position > head) break;
          if (change.block) {
            const { userId, blockedUserId, blocked } = change.block;
            const key = `${userId}\n${blockedUserId}`;
            if (!blocked) pairs.delete(key);
            else if (asked.has(userId) || asked.has(blockedUserId)) pairs.set(key, { userId, blockedUserId });
            continue;
          }
          for (const userId of change.joined) {
            if (asked.has(userId)) of(userId).set(change.conversationId, change.seq);
          }
          if (change.left !== null && asked.has(change.left)) of(change.left).delete(change.conversationId);
        }
      }
      const memberships = new Map<string, Membership[]>();
      for (const [userId, conversations] of byUser) {
        if (conversations.size === 0) continue;
        memberships.set(
          userId,
          Array.from(conversations, ([conversationId, seq]) => ({ conversationId, seq })),
        );
      }
      const blocks = new Map<string, Block[]>();
      for (const b of pairs.values()) {
        const sides: [string, Block][] = [
          [b.userId, { otherUserId: b.blockedUserId, blocking: true }],
          [b.blockedUserId, { otherUserId: b.userId, blocking: false }],
        ];
        for (const [userId, block] of sides) {
          if (!asked.has(userId)) continue;
          const list = blocks.get(userId);
          if (list) list.push(block);
          else blocks.set(userId, [block]);
        }
      }
      // biome-ignore lint/complexity/useMathMinMax: positions are strings (fixed-width hex)
      const position = checkpoint > head ? checkpoint : head;
      return { position, memberships, blocks };
    },
  };
};

import { randomUUID } from 'node:crypto';
import type { Rng } from '@chat/testkit';
import type { DeviceSpec } from './protocol.js';

// Who is in the run: group conversations of members with one or two devices (a user's devices on
// different gateways), canary users removed during the run, and a "hot" conversation whose slow
// devices stop reading while it bursts (F12).

export type PopulationSize = {
  conversations: number;
  /** Normal users; a quarter of them have a second device. */
  users: number;
  /** Conversations per normal user: 1 to this many. */
  maxConversationsPerUser: number;
  canaries: number;
  /** Users in the hot conversation whose only device stops reading during F12. */
  slowUsers: number;
  /** Normal users also in the hot conversation (they keep reading). */
  hotMembers: number;
};

export type Conversation = { id: string; creator: string; members: string[]; hot: boolean };

export type Population = {
  conversations: Conversation[];
  devices: DeviceSpec[];
  /** Canary users and the conversations they leave during the run. */
  canaries: { user: string; convs: string[] }[];
  hot: Conversation;
};

export const makePopulation = (size: PopulationSize, random: Rng): Population => {
  const pickIndex = (n: number) => Math.floor(random() * n);
  const users = Array.from({ length: size.users }, (_, i) => `u${String(i).padStart(5, '0')}`);
  const conversations: Conversation[] = Array.from({ length: size.conversations }, () => ({
    id: randomUUID(),
    creator: '',
    members: [],
    hot: false,
  }));
  const joined = new Map<string, string[]>();
  const join = (c: Conversation, user: string) => {
    if (c.members.includes(user)) return;
    c.members.push(user);
    joined.set(user, [...(joined.get(user) ?? []), c.id]);
  };
  // Every conversation gets two members first, then every user their share.
  for (const [i, c] of conversations.entries()) {
    join(c, users[(2 * i) % users.length]!);
    join(c, users[(2 * i + 1) % users.length]!);
  }
  for (const u of users) {
    const want = 1 + pickIndex(size.maxConversationsPerUser);
    for (let k = (joined.get(u) ?? []).length; k < want; k++)
      join(conversations[pickIndex(conversations.length)]!, u);
  }
  for (const c of conversations) c.creator = c.members[0]!;
  const canaries = Array.from({ length: size.canaries }, (_, i) => {
    const user = `canary${String(i).padStart(3, '0')}`;
    const convs = new Set<string>();
    while (convs.size < Math.min(2, conversations.length))
      convs.add(conversations[pickIndex(conversations.length)]!.id);
    for (const id of convs) join(conversations.find((c) => c.id === id)!, user);
    return { user, convs: [...convs] };
  });
  const slow = Array.from({ length: size.slowUsers }, (_, i) => `slow${String(i).padStart(3, '0')}`);
  const hot: Conversation = { id: randomUUID(), creator: users[0]!, members: [], hot: true };
  join(hot, users[0]!);
  for (let i = 1; i < size.hotMembers; i++) join(hot, users[pickIndex(users.length)]!);
  for (const u of slow) join(hot, u);
  conversations.push(hot);

  const devices: DeviceSpec[] = [];
  const device = (user: string, role: DeviceSpec['role'], n: number) =>
    devices.push({ d: `${user}/${n}`, user, role, gw: devices.length % 2, convs: joined.get(user) ?? [] });
  for (const u of users) {
    device(u, 'member', 1);
    if (random() < 0.25) device(u, 'member', 2);
  }
  for (const c of canaries) device(c.user, 'canary', 1);
  for (const u of slow) device(u, 'slow', 1);
  return { conversations, devices, canaries, hot };
};

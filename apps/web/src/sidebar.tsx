import type { Conversation, PresenceStatus } from '@chat/events';
import { useState } from 'preact/hooks';
import type { ChatStore } from './store.js';

export const Sidebar = ({ store, onSignOut }: { store: ChatStore; onSignOut: () => void }) => {
  const [panel, setPanel] = useState<'list' | 'new' | 'inbox'>('list');
  const total = store.unread.total;
  const unreadNotifications = store.unreadNotifications();
  return (
    <aside class="sidebar">
      <header>
        <span class="me" title="Signed in as">
          {store.me}
        </span>
        <span class="total" data-testid="unread-total" data-count={total}>
          {total > 0 ? `${total} unread` : 'all read'}
        </span>
        <button type="button" class="link" onClick={onSignOut}>
          Sign out
        </button>
      </header>
      <nav class="tabs">
        <button type="button" aria-pressed={panel === 'list'} onClick={() => setPanel('list')}>
          Chats
        </button>
        <button type="button" aria-pressed={panel === 'new'} onClick={() => setPanel('new')}>
          New
        </button>
        <button
          type="button"
          aria-pressed={panel === 'inbox'}
          onClick={() => setPanel('inbox')}
          data-testid="inbox-tab"
        >
          Inbox{unreadNotifications > 0 && <span class="badge">{unreadNotifications}</span>}
        </button>
      </nav>
      {panel === 'list' && <ConversationList store={store} />}
      {panel === 'new' && <NewConversation store={store} onDone={() => setPanel('list')} />}
      {panel === 'inbox' && <Inbox store={store} onOpen={() => setPanel('list')} />}
    </aside>
  );
};

export const PresenceDot = ({ status, userId }: { status: PresenceStatus | undefined; userId: string }) => (
  <span
    class={`dot ${status ?? 'unknown'}`}
    title={`${userId}: ${status ?? 'unknown'}`}
    data-testid={`presence-${userId}`}
    data-status={status ?? 'unknown'}
  />
);

const ConversationList = ({ store }: { store: ChatStore }) => {
  const list = store.sortedConversations();
  if (list.length === 0) return <p class="hint">No conversations yet: start one under “New”.</p>;
  return (
    <ul class="conversations">
      {list.map((c) => (
        <ConversationItem key={c.conversationId} store={store} c={c} />
      ))}
    </ul>
  );
};

const ConversationItem = ({ store, c }: { store: ChatStore; c: Conversation }) => {
  const unread = store.unread.get(c.conversationId);
  const other = c.kind === 'direct' ? c.members.find((m) => m !== store.me) : undefined;
  const last = c.lastMessage;
  const lastText = last ? (last.deleted ? 'message deleted' : `${last.senderId}: ${last.preview}`) : '';
  return (
    <li>
      <button
        type="button"
        class={`conversation ${store.selected === c.conversationId ? 'selected' : ''}`}
        onClick={() => void store.select(c.conversationId)}
        data-testid="conversation"
        data-id={c.conversationId}
        data-name={store.nameOf(c)}
      >
        {other ? (
          <PresenceDot status={store.presence.get(other)} userId={other} />
        ) : (
          <span class="dot none" aria-hidden="true" />
        )}
        <span class="name">{store.nameOf(c)}</span>
        {unread > 0 && (
          <span class="badge" data-testid="unread-badge" title={`${unread} unread`}>
            {unread}
          </span>
        )}
        <span class="preview">{lastText}</span>
      </button>
    </li>
  );
};

const KINDS = [
  ['direct', 'Direct'],
  ['group', 'Group'],
] as const;

const NewConversation = ({ store, onDone }: { store: ChatStore; onDone: () => void }) => {
  const [kind, setKind] = useState<'direct' | 'group'>('direct');
  const [members, setMembers] = useState('');
  const [title, setTitle] = useState('');
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    const ids = members
      .split(/[\s,]+/)
      .map((s) => s.trim())
      .filter(Boolean);
    setBusy(true);
    const ok = await store.create(kind, ids, kind === 'group' ? title.trim() || undefined : undefined);
    setBusy(false);
    if (ok) onDone();
  };
  return (
    <form class="new-conversation" onSubmit={(e) => void submit(e)} aria-label="New conversation">
      <fieldset>
        <legend>Kind</legend>
        {KINDS.map(([value, label]) => (
          <label key={value}>
            <input
              type="radio"
              name="kind"
              value={value}
              checked={kind === value}
              onChange={() => setKind(value)}
            />
            {label}
          </label>
        ))}
      </fieldset>
      <label>
        {kind === 'direct' ? 'With (user id)' : 'Members (user ids, comma separated)'}
        <input name="members" value={members} onInput={(e) => setMembers(e.currentTarget.value)} required />
      </label>
      {kind === 'group' && (
        <label>
          Title
          <input
            name="title"
            value={title}
            onInput={(e) => setTitle(e.currentTarget.value)}
            maxLength={200}
          />
        </label>
      )}
      <button type="submit" disabled={busy}>
        Start
      </button>
    </form>
  );
};

const Inbox = ({ store, onOpen }: { store: ChatStore; onOpen: () => void }) => {
  const items = store.notifications;
  const open = (conversationId: string, notificationId: string, unread: boolean) => {
    if (unread) void store.readNotifications([notificationId]);
    void store.select(conversationId);
    onOpen();
  };
  return (
    <section class="inbox" aria-label="Notifications">
      <div class="inbox-actions">
        <button
          type="button"
          onClick={() => void store.readNotifications('all')}
          disabled={store.unreadNotifications() === 0}
        >
          Mark all read
        </button>
      </div>
      {items.length === 0 && <p class="hint">No notifications.</p>}
      <ul>
        {items.map((n) => (
          <li key={n.notificationId} class={n.readAt ? 'read' : 'unread'} data-testid="notification">
            <button type="button" onClick={() => open(n.conversationId, n.notificationId, n.readAt === null)}>
              <span class="kind">{n.kind}</span> <strong>{n.actorId}</strong>: {n.preview}
              <time dateTime={n.createdAt}>{timeOf(n.createdAt)}</time>
            </button>
            {n.readAt === null && (
              <button
                type="button"
                class="link"
                onClick={() => void store.readNotifications([n.notificationId])}
                aria-label="Mark read"
              >
                ✓
              </button>
            )}
          </li>
        ))}
      </ul>
      {store.notificationsCursor && (
        <button type="button" class="link" onClick={() => void store.loadNotifications(true)}>
          Older notifications
        </button>
      )}
    </section>
  );
};

export const timeOf = (iso: string): string =>
  new Date(iso).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });

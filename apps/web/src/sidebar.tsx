import type { Conversation, PresenceStatus, SearchHit } from '@chat/events';
import { useState } from 'preact/hooks';
import { snippetParts } from './snippet.js';
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
      {panel === 'list' && <Search store={store} />}
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

/** The search box over the conversation list; while it holds results, they replace the list. */
const Search = ({ store }: { store: ChatStore }) => {
  const [q, setQ] = useState('');
  const [hits, setHits] = useState<SearchHit[] | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    const query = q.trim();
    if (!query) return setHits(null);
    setBusy(true);
    setHits(await store.search(query));
    setBusy(false);
  };
  const clear = () => {
    setQ('');
    setHits(null);
  };
  return (
    <>
      <form class="search" aria-label="Search" onSubmit={(e) => void submit(e)}>
        <input
          type="search"
          name="q"
          value={q}
          placeholder="Search messages"
          aria-label="Search messages"
          maxLength={500}
          onInput={(e) => {
            setQ(e.currentTarget.value);
            if (!e.currentTarget.value) setHits(null);
          }}
          onKeyDown={(e) => {
            if (e.key === 'Escape') clear();
          }}
        />
        <button type="submit" disabled={busy}>
          Search
        </button>
      </form>
      {hits ? (
        <SearchResults store={store} hits={hits} onClear={clear} />
      ) : (
        <ConversationList store={store} />
      )}
    </>
  );
};

const SearchResults = ({
  store,
  hits,
  onClear,
}: {
  store: ChatStore;
  hits: SearchHit[];
  onClear: () => void;
}) => (
  <section class="search-results" aria-label="Search results">
    <div class="search-actions">
      <span class="hint">{hits.length === 0 ? 'No messages found.' : `${hits.length} found`}</span>
      <button type="button" class="link" onClick={onClear}>
        Back to chats
      </button>
    </div>
    <ul>
      {hits.map((h) => {
        const c = store.conversations.get(h.conversationId);
        return (
          <li key={h.messageId}>
            <button
              type="button"
              class="hit"
              data-testid="search-result"
              data-conversation-id={h.conversationId}
              data-message-id={h.messageId}
              onClick={() => void store.openHit(h)}
            >
              <span class="where">
                {c ? store.nameOf(c) : 'a conversation'}
                {h.threadRootId && ' · in a thread'}
              </span>
              <span class="snippet" data-testid="search-snippet">
                <strong>{h.senderId}</strong>: <Snippet snippet={h.snippet} />
              </span>
              <time dateTime={h.sentAt}>{timeOf(h.sentAt)}</time>
            </button>
          </li>
        );
      })}
    </ul>
  </section>
);

/** A highlighted snippet as text nodes and <mark> elements: nothing of it is parsed as HTML. */
const Snippet = ({ snippet }: { snippet: string }) => (
  <>{snippetParts(snippet).map((p, i) => (p.mark ? <mark key={i}>{p.text}</mark> : p.text))}</>
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

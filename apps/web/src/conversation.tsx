import type { NotificationLevel } from '@chat/client';
import type { Conversation } from '@chat/events';
import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import { PresenceDot, timeOf } from './sidebar.js';
import type { ChatStore } from './store.js';
import type { ThreadMessage } from './thread.js';

const QUICK_REACTIONS = ['👍', '❤️', '😂', '🎉'];
const LEVELS: NotificationLevel[] = ['all', 'mentions', 'none'];

export const ConversationPane = ({
  store,
  conversation,
}: {
  store: ChatStore;
  conversation: Conversation;
}) => {
  const id = conversation.conversationId;
  const [replyTo, setReplyTo] = useState<ThreadMessage | null>(null);
  const [editing, setEditing] = useState<ThreadMessage | null>(null);
  useEffect(() => {
    setReplyTo(null);
    setEditing(null);
  }, [id]);
  const others = conversation.members.filter((m) => m !== store.me);
  const typing = store.typingIn(id);
  return (
    <section class="pane" aria-label={`Conversation ${store.nameOf(conversation)}`}>
      <header class="pane-header">
        <button type="button" class="back" onClick={() => void store.select(null)} aria-label="Back">
          ‹
        </button>
        <div class="title">
          <h2>{store.nameOf(conversation)}</h2>
          <ul class="members" aria-label="Members">
            {others.slice(0, 12).map((m) => (
              <li key={m}>
                <PresenceDot status={store.presence.get(m)} userId={m} />
                {m}
              </li>
            ))}
            {others.length > 12 && <li>+{others.length - 12}</li>}
          </ul>
        </div>
        <label class="level">
          Notify
          <select
            value={store.levelOf(conversation)}
            onChange={(e) => void store.setLevel(id, e.currentTarget.value as NotificationLevel)}
          >
            {LEVELS.map((l) => (
              <option key={l} value={l}>
                {l}
              </option>
            ))}
          </select>
        </label>
      </header>
      <MessageList
        store={store}
        conversation={conversation}
        onReply={(m) => {
          setEditing(null);
          setReplyTo(m);
        }}
        onEdit={(m) => {
          setReplyTo(null);
          setEditing(m);
        }}
        onThread={(m) => void store.showThread(id, m.messageId)}
      />
      <p class="typing" data-testid="typing" aria-live="polite">
        {typing.length > 0 ? `${typing.join(', ')} ${typing.length === 1 ? 'is' : 'are'} typing…` : ''}
      </p>
      <Composer
        // A new composer per conversation and per message being edited: it starts with that text.
        key={`${id}:${editing?.messageId ?? ''}`}
        store={store}
        conversationId={id}
        replyTo={replyTo}
        editing={editing}
        onDone={() => {
          setReplyTo(null);
          setEditing(null);
        }}
      />
    </section>
  );
};

const MessageList = ({
  store,
  conversation,
  onReply,
  onEdit,
  onThread,
}: {
  store: ChatStore;
  conversation: Conversation;
  onReply: (m: ThreadMessage) => void;
  onEdit: (m: ThreadMessage) => void;
  onThread: (m: ThreadMessage) => void;
}) => {
  const id = conversation.conversationId;
  const thread = store.threads.get(id);
  const messages = thread?.messages ?? [];
  const ref = useRef<HTMLOListElement>(null);
  const anchor = useRef<{ first: string | undefined; height: number; atBottom: boolean } | null>(null);
  const loadingOlder = useRef(false);

  // Keeps the view where the reader is: at the bottom for new messages, still after older ones load.
  useLayoutEffect(() => {
    const el = ref.current;
    if (!el) return;
    const before = anchor.current;
    const first = messages[0]?.messageId;
    if (!before || before.atBottom) el.scrollTop = el.scrollHeight;
    else if (before.first !== first) el.scrollTop += el.scrollHeight - before.height;
    anchor.current = { first, height: el.scrollHeight, atBottom: isAtBottom(el) };
  });

  const onScroll = () => {
    const el = ref.current;
    if (!el) return;
    anchor.current = { first: messages[0]?.messageId, height: el.scrollHeight, atBottom: isAtBottom(el) };
    if (el.scrollTop < 80 && thread?.hasOlder && !loadingOlder.current) {
      loadingOlder.current = true;
      void store.loadOlder(id).finally(() => {
        loadingOlder.current = false;
      });
    }
  };

  const lastOwn = [...messages].reverse().find((m) => m.senderId === store.me && !m.deleted);
  const seen = lastOwn ? store.seenBy(id, lastOwn.seq) : [];
  return (
    <ol class="messages" ref={ref} onScroll={onScroll} data-testid="messages" aria-label="Messages">
      {thread?.hasOlder && (
        <li class="older">
          <button type="button" class="link" onClick={() => void store.loadOlder(id)}>
            Older messages
          </button>
        </li>
      )}
      {thread && !thread.loaded && <li class="hint">Loading…</li>}
      {messages.map((m) => (
        <MessageItem
          key={m.messageId}
          store={store}
          m={m}
          quoted={m.replyTo ? (thread?.get(m.replyTo) ?? null) : null}
          onReply={onReply}
          onEdit={onEdit}
          onThread={onThread}
          seenBy={m === lastOwn ? seen : []}
        />
      ))}
    </ol>
  );
};

const isAtBottom = (el: HTMLElement) => el.scrollHeight - el.scrollTop - el.clientHeight < 40;

const MessageItem = ({
  store,
  m,
  quoted,
  onReply,
  onEdit,
  onThread,
  seenBy,
  testId = 'message',
}: {
  store: ChatStore;
  m: ThreadMessage;
  quoted: ThreadMessage | null;
  /** Quote-reply; absent in a thread pane (threads do not nest). */
  onReply?: (m: ThreadMessage) => void;
  onEdit: (m: ThreadMessage) => void;
  /** Opens the message's thread; absent in a thread pane. */
  onThread?: (m: ThreadMessage) => void;
  seenBy: string[];
  testId?: string;
}) => {
  const own = m.senderId === store.me;
  const [confirming, setConfirming] = useState(false);
  return (
    <li
      class={`message ${own ? 'own' : ''} ${m.deleted ? 'deleted' : ''}`}
      data-testid={testId}
      data-seq={m.seq}
      data-message-id={m.messageId}
    >
      <div class="meta">
        <strong>{m.senderId}</strong> <time dateTime={m.sentAt}>{timeOf(m.sentAt)}</time>
        {m.editedAt && !m.deleted && <span class="edited"> (edited)</span>}
      </div>
      {m.replyTo && (
        <blockquote class="quote">
          {quoted
            ? quoted.deleted
              ? 'a deleted message'
              : `${quoted.senderId}: ${quoted.body ?? ''}`
            : 'an earlier message'}
        </blockquote>
      )}
      <p class="body" data-testid="message-body">
        {m.deleted ? 'message deleted' : m.body}
      </p>
      {onThread && m.replyCount > 0 && (
        <button
          type="button"
          class="link thread-summary"
          data-testid="thread-summary"
          onClick={() => onThread(m)}
        >
          {m.replyCount} {m.replyCount === 1 ? 'reply' : 'replies'}
          {m.lastReplyAt && (
            <>
              {' · last '}
              <time dateTime={m.lastReplyAt}>{timeOf(m.lastReplyAt)}</time>
            </>
          )}
        </button>
      )}
      {m.reactions.length > 0 && (
        <div class="reactions">
          {m.reactions.map((r) => (
            <button
              type="button"
              key={r.reaction}
              class={r.userIds.includes(store.me) ? 'mine' : ''}
              title={r.userIds.join(', ')}
              onClick={() => void store.toggleReaction(m.conversationId, m.messageId, r.reaction)}
            >
              {r.reaction} {r.count}
            </button>
          ))}
        </div>
      )}
      {!m.deleted && (
        <div class="actions">
          {onReply && (
            <button type="button" class="link" onClick={() => onReply(m)}>
              Reply
            </button>
          )}
          {onThread && (
            <button type="button" class="link" onClick={() => onThread(m)}>
              Reply in thread
            </button>
          )}
          {QUICK_REACTIONS.map((r) => (
            <button
              type="button"
              class="link"
              key={r}
              aria-label={`React ${r}`}
              onClick={() => void store.toggleReaction(m.conversationId, m.messageId, r)}
            >
              {r}
            </button>
          ))}
          {own && (
            <>
              <button type="button" class="link" onClick={() => onEdit(m)}>
                Edit
              </button>
              {confirming ? (
                <>
                  <button
                    type="button"
                    class="link danger"
                    onClick={() => void store.remove(m.conversationId, m.messageId)}
                  >
                    Delete for everyone
                  </button>
                  <button type="button" class="link" onClick={() => setConfirming(false)}>
                    Keep
                  </button>
                </>
              ) : (
                <button type="button" class="link" onClick={() => setConfirming(true)}>
                  Delete
                </button>
              )}
            </>
          )}
        </div>
      )}
      {seenBy.length > 0 && (
        <p class="seen" data-testid="seen-by">
          Seen by {seenBy.join(', ')}
        </p>
      )}
    </li>
  );
};

const Composer = ({
  store,
  conversationId,
  replyTo,
  editing,
  onDone,
  threadRootId,
}: {
  store: ChatStore;
  conversationId: string;
  replyTo: ThreadMessage | null;
  editing: ThreadMessage | null;
  onDone: () => void;
  /** Sends into this thread (the thread pane's composer). */
  threadRootId?: string;
}) => {
  const [text, setText] = useState(editing?.body ?? '');
  const input = useRef<HTMLTextAreaElement>(null);
  useEffect(() => {
    input.current?.focus();
  }, [editing, replyTo]);

  const submit = async () => {
    const body = text.trim();
    if (!body) return;
    setText('');
    if (editing) await store.edit(conversationId, editing.messageId, body);
    else if (threadRootId) await store.sendInThread(conversationId, threadRootId, body);
    else await store.send(conversationId, body, replyTo?.messageId);
    onDone();
  };

  return (
    <form
      class="composer"
      onSubmit={(e) => {
        e.preventDefault();
        void submit();
      }}
    >
      {(replyTo || editing) && (
        <div class="context">
          {editing ? 'Editing your message' : `Replying to ${replyTo?.senderId}: ${replyTo?.body ?? ''}`}
          <button
            type="button"
            class="link"
            onClick={() => {
              setText('');
              onDone();
            }}
          >
            Cancel
          </button>
        </div>
      )}
      <textarea
        ref={input}
        name="body"
        rows={2}
        value={text}
        placeholder={threadRootId ? 'Reply in thread' : 'Write a message'}
        aria-label={threadRootId ? 'Thread reply' : 'Message'}
        maxLength={4000}
        onInput={(e) => {
          setText(e.currentTarget.value);
          if (!editing) store.typed(conversationId);
        }}
        onKeyDown={(e) => {
          if (e.key === 'Enter' && !e.shiftKey) {
            e.preventDefault();
            void submit();
          }
          if (e.key === 'Escape') {
            setText('');
            onDone();
          }
        }}
      />
      <button type="submit">{editing ? 'Save' : 'Send'}</button>
    </form>
  );
};

/** A thread: its root, then its replies (paged back by scrolling up), and a composer that replies in it. */
export const ThreadPane = ({
  store,
  conversationId,
  rootId,
}: {
  store: ChatStore;
  conversationId: string;
  rootId: string;
}) => {
  const [editing, setEditing] = useState<ThreadMessage | null>(null);
  const thread = store.replyThread(conversationId, rootId);
  const messages = thread?.messages ?? [];
  const ref = useRef<HTMLOListElement>(null);
  const atBottom = useRef(true);
  const loadingOlder = useRef(false);
  const count = useRef(0);
  useLayoutEffect(() => {
    const el = ref.current;
    if (!el) return;
    // New replies keep a reader at the bottom there; older ones loading above keep their place.
    if (atBottom.current && messages.length !== count.current) el.scrollTop = el.scrollHeight;
    count.current = messages.length;
  });
  const onScroll = () => {
    const el = ref.current;
    if (!el) return;
    atBottom.current = isAtBottom(el);
    if (el.scrollTop < 80 && thread?.hasOlder && !loadingOlder.current) {
      loadingOlder.current = true;
      void store.loadOlderReplies(conversationId, rootId).finally(() => {
        loadingOlder.current = false;
      });
    }
  };
  const root = thread?.get(rootId);
  return (
    <section class="thread-pane" aria-label="Thread" data-testid="thread-pane">
      <header class="pane-header">
        <button type="button" class="close" onClick={() => store.closeThread()} aria-label="Close thread">
          ×
        </button>
        <h2>Thread</h2>
        {root && (
          <span class="hint" data-testid="thread-count">
            {root.replyCount} {root.replyCount === 1 ? 'reply' : 'replies'}
          </span>
        )}
      </header>
      <ol class="messages" ref={ref} onScroll={onScroll} aria-label="Thread messages">
        {thread && !thread.loaded && <li class="hint">Loading…</li>}
        {thread?.hasOlder && (
          <li class="older">
            <button
              type="button"
              class="link"
              onClick={() => void store.loadOlderReplies(conversationId, rootId)}
            >
              Older replies
            </button>
          </li>
        )}
        {messages.map((m) => (
          <MessageItem
            key={m.messageId}
            store={store}
            m={m}
            quoted={null}
            onEdit={setEditing}
            seenBy={[]}
            testId={m.messageId === rootId ? 'thread-root' : 'thread-message'}
          />
        ))}
      </ol>
      <Composer
        key={`${conversationId}:${rootId}:${editing?.messageId ?? ''}`}
        store={store}
        conversationId={conversationId}
        replyTo={null}
        editing={editing}
        threadRootId={rootId}
        onDone={() => setEditing(null)}
      />
    </section>
  );
};

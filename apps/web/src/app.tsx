import { ChatApi, ChatApiError } from '@chat/client';
import { USER_ID_RE } from '@chat/events';
import { useEffect, useState } from 'preact/hooks';
import { ConversationPane, ThreadPane } from './conversation.js';
import {
  devSignInAvailable,
  loadSession,
  type Session,
  saveSession,
  subjectOf,
  tokenSource,
} from './session.js';
import { Sidebar } from './sidebar.js';
import { ChatStore } from './store.js';
import { useStore } from './use-store.js';

export type AppConfig = { apiUrl: string; gatewayUrl: string };

/** The whole page: sign-in until a session exists, then the chat. */
export const App = ({ config }: { config: AppConfig }) => {
  const [session, setSession] = useState<Session | null>(loadSession);
  const [store, setStore] = useState<ChatStore | null>(null);
  const [failure, setFailure] = useState<string | null>(null);

  useEffect(() => {
    if (!session) return;
    let closed = false;
    let opened: ChatStore | undefined;
    const anonymous = new ChatApi({ baseUrl: config.apiUrl });
    const token = tokenSource(anonymous, session);
    const api = new ChatApi({ baseUrl: config.apiUrl, token });
    ChatStore.open({ me: session.userId, api, gatewayUrl: config.gatewayUrl, token }).then(
      (s) => {
        if (closed) return s.close();
        opened = s;
        setStore(s);
      },
      (err: unknown) => {
        if (closed) return;
        setFailure(err instanceof Error ? err.message : String(err));
        if (err instanceof ChatApiError && err.status === 401) signOut();
      },
    );
    return () => {
      closed = true;
      opened?.close();
      setStore(null);
    };
  }, [session, config]);

  const signIn = (next: Session) => {
    saveSession(next);
    setFailure(null);
    setSession(next);
  };
  const signOut = () => {
    saveSession(null);
    setSession(null);
  };

  if (!session) return <SignIn config={config} onSignIn={signIn} failure={failure} />;
  if (!store)
    return (
      <main class="loading">
        {failure ? <p role="alert">Could not load your conversations: {failure}</p> : <p>Loading…</p>}
      </main>
    );
  return <Chat store={store} onSignOut={signOut} />;
};

const SignIn = ({
  config,
  onSignIn,
  failure,
}: {
  config: AppConfig;
  onSignIn: (s: Session) => void;
  failure: string | null;
}) => {
  const [userId, setUserId] = useState('');
  const [token, setToken] = useState('');
  const [devAvailable, setDevAvailable] = useState<boolean | null>(null);
  const [error, setError] = useState<string | null>(failure);

  useEffect(() => {
    void devSignInAvailable(new ChatApi({ baseUrl: config.apiUrl })).then(setDevAvailable);
  }, [config]);

  const submit = (e: Event) => {
    e.preventDefault();
    if (devAvailable === false) {
      const sub = subjectOf(token.trim());
      if (!sub) return setError('That is not a token (a JWT with a sub claim).');
      return onSignIn({ userId: sub, token: token.trim() });
    }
    const id = userId.trim();
    if (!USER_ID_RE.test(id))
      return setError('A user id is 1–64 characters of letters, digits and _ . : @ -');
    onSignIn({ userId: id });
  };

  return (
    <main class="sign-in">
      <form onSubmit={submit} aria-label="Sign in">
        <h1>Chat</h1>
        {devAvailable === false ? (
          <label>
            Access token
            <textarea
              name="token"
              value={token}
              onInput={(e) => setToken(e.currentTarget.value)}
              rows={4}
              required
            />
          </label>
        ) : (
          <>
            <label>
              Sign in as (any user id)
              <input
                name="userId"
                value={userId}
                onInput={(e) => setUserId(e.currentTarget.value)}
                autocomplete="username"
                placeholder="alice"
                required
              />
            </label>
            <p class="hint">Development sign-in: the server signs a token for any user id.</p>
          </>
        )}
        {error && <p role="alert">{error}</p>}
        <button type="submit">Sign in</button>
      </form>
    </main>
  );
};

const Chat = ({ store, onSignOut }: { store: ChatStore; onSignOut: () => void }) => {
  useStore(store);
  useEffect(() => {
    const total = store.unread.total;
    document.title = total > 0 ? `(${total}) Chat` : 'Chat';
  });
  const selected = store.selected ? store.conversations.get(store.selected) : undefined;
  const thread =
    selected && store.openThread?.conversationId === selected.conversationId ? store.openThread : null;
  return (
    <div class={`chat ${selected ? 'has-selection' : ''} ${thread ? 'has-thread' : ''}`}>
      <ConnectionBanner store={store} />
      {store.error && (
        <div class="error" role="alert">
          {store.error}
          <button type="button" onClick={() => store.dismissError()} aria-label="Dismiss">
            ×
          </button>
        </div>
      )}
      <Sidebar store={store} onSignOut={onSignOut} />
      {selected ? (
        <ConversationPane store={store} conversation={selected} />
      ) : (
        <section class="pane empty">
          <p>Pick a conversation, or start one.</p>
        </section>
      )}
      {thread && (
        <ThreadPane
          key={`${thread.conversationId}/${thread.rootId}`}
          store={store}
          conversationId={thread.conversationId}
          rootId={thread.rootId}
        />
      )}
    </div>
  );
};

const ConnectionBanner = ({ store }: { store: ChatStore }) => {
  const banner = store.banner;
  if (!banner) return null;
  const text = {
    connecting: 'Connecting…',
    reconnecting: 'Connection lost — reconnecting…',
    reconnected: 'Reconnected — you are up to date.',
  }[banner.kind];
  return (
    <div
      class={`banner ${banner.kind}`}
      role="status"
      data-testid="connection-banner"
      data-state={banner.kind}
    >
      {text}
    </div>
  );
};

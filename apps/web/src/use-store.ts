import { useEffect, useState } from 'preact/hooks';
import type { ChatStore } from './store.js';

/** Re-renders the component whenever the store changes. */
export const useStore = (store: ChatStore): ChatStore => {
  const [, setVersion] = useState(store.version);
  useEffect(() => store.subscribe(() => setVersion(store.version)), [store]);
  return store;
};

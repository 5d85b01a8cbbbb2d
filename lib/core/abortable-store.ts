import { addAbortSignal } from 'node:stream';
import type { ObjectStore } from './ports.ts';

/**
 * A store whose reads stop when the signal aborts: every stream it opened is destroyed at once
 * (an AbortError to its reader, however long the read would still take), and nothing new is
 * listed or opened after it.
 */
export function abortableStore(store: ObjectStore, signal: AbortSignal): ObjectStore {
  const abortable: ObjectStore = {
    url: store.url,
    async *list() {
      signal.throwIfAborted();
      for await (const info of store.list()) {
        signal.throwIfAborted();
        yield info;
      }
    },
    async open(key, options) {
      signal.throwIfAborted();
      const stream = await store.open(key, options);
      if (signal.aborted) {
        stream.destroy();
        signal.throwIfAborted();
      }
      return addAbortSignal(signal, stream);
    },
    head: async (key) => {
      signal.throwIfAborted();
      return store.head(key);
    },
  };
  if (store.localPath) {
    const localPath = store.localPath.bind(store);
    abortable.localPath = (key) => (signal.aborted ? undefined : localPath(key));
  }
  return abortable;
}

import { addAbortSignal } from 'node:stream';
import type { ObjectStore } from './ports.ts';

/**
 * A store whose work stops when the signal aborts: every stream it opened is destroyed at once
 * (an AbortError to its reader, however long the read would still take), and a listing page or
 * an open still waiting for the store is abandoned, its caller told at once.
 */
export function abortableStore(store: ObjectStore, signal: AbortSignal): ObjectStore {
  const abortable: ObjectStore = {
    url: store.url,
    async *list() {
      const iterator = store.list()[Symbol.asyncIterator]();
      try {
        for (;;) {
          const next = await untilAbort(iterator.next(), signal);
          if (next.done) return;
          yield next.value;
        }
      } finally {
        if (!signal.aborted) await iterator.return?.();
      }
    },
    async open(key, options) {
      const opening = store.open(key, options);
      // Opened after the abort: nobody will read it.
      void opening.then(
        (stream) => signal.aborted && stream.destroy(),
        () => undefined,
      );
      return addAbortSignal(signal, await untilAbort(opening, signal));
    },
    head: (key) => untilAbort(store.head(key), signal),
  };
  if (store.localPath) {
    const localPath = store.localPath.bind(store);
    abortable.localPath = (key) => (signal.aborted ? undefined : localPath(key));
  }
  return abortable;
}

/** The promise's outcome, or the abort's reason as soon as the signal aborts. */
function untilAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    promise.catch(() => undefined);
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

import { useEffect, useReducer, useRef } from 'preact/hooks';

/** A value that changes over time, with listeners. The app's state lives in one of these. */
export interface Store<S> {
  get(): S;
  /** Replaces the state with `update(state)`; listeners run only when it returns a new object. */
  update(update: (state: S) => S): void;
  subscribe(listener: () => void): () => void;
}

export function createStore<S>(initial: S): Store<S> {
  let state = initial;
  const listeners = new Set<() => void>();
  return {
    get: () => state,
    update(update) {
      const next = update(state);
      if (next === state) return;
      state = next;
      for (const listener of [...listeners]) listener();
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}

/**
 * Reads a slice of a store and re-renders the component only when that slice changes
 * (compared with `Object.is`), so a new message re-renders its chat, not the whole app.
 * State updates are immutable, so unchanged slices keep their identity.
 */
export function useSelector<S, T>(store: Store<S>, select: (state: S) => T): T {
  const [, rerender] = useReducer((count: number) => count + 1, 0);
  const selectRef = useRef(select);
  selectRef.current = select;
  const value = select(store.get());
  const valueRef = useRef(value);
  valueRef.current = value;
  useEffect(() => {
    const check = () => {
      if (!Object.is(selectRef.current(store.get()), valueRef.current)) rerender(0);
    };
    const unsubscribe = store.subscribe(check);
    // The state may have changed between render and this effect (effects run after paint).
    check();
    return unsubscribe;
  }, [store]);
  return value;
}

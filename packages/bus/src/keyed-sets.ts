/**
 * A set of values per key, for keys that nearly always hold one value: a lone value is
 * stored as is, a Set only from the second value on. A node keeps tens of thousands of
 * channels, nearly all with one handler or one listening socket, and a Set each would
 * cost every connection a few hundred bytes. T must not itself be a Set.
 */
export class KeyedSets<T extends object> {
  private readonly entries = new Map<string, T | Set<T>>();

  /** Returns true when the key had no value before. */
  add(key: string, value: T): boolean {
    const existing = this.entries.get(key);
    if (!existing) {
      this.entries.set(key, value);
      return true;
    }
    if (existing instanceof Set) existing.add(value);
    else if (existing !== value) this.entries.set(key, new Set([existing, value]));
    return false;
  }

  /** Returns true when this removed the key's last value. */
  delete(key: string, value: T): boolean {
    const existing = this.entries.get(key);
    if (!existing) return false;
    if (existing instanceof Set) {
      existing.delete(value);
      if (existing.size > 1) return false;
      // Back to a lone value (a Set here is never empty).
      const [last] = existing;
      if (last) {
        this.entries.set(key, last);
        return false;
      }
    } else if (existing !== value) {
      return false;
    }
    this.entries.delete(key);
    return true;
  }

  /** Drops the key with all its values. */
  clear(key: string): void {
    this.entries.delete(key);
  }

  has(key: string): boolean {
    return this.entries.has(key);
  }

  /** The key's values; none for a key that has none. */
  get(key: string): Iterable<T> {
    const existing = this.entries.get(key);
    if (!existing) return [];
    return existing instanceof Set ? existing : [existing];
  }

  keys(): IterableIterator<string> {
    return this.entries.keys();
  }
}

/**
 * A set of message seqs kept as sorted, disjoint [first, last] ranges. A conversation's
 * pushes arrive in seq order, so the common case is extending the last range by one (O(1))
 * and a run's receipts for one member usually fold into a single range, whatever the
 * number of messages: cheap to hold for thousands of members and to send to the parent.
 */
export class SeqSet {
  /** Flat [first0, last0, first1, last1, ...], sorted, disjoint and not adjacent. */
  private ranges: number[] = [];
  size = 0;

  /** Adds a seq; false when it was already there (a duplicate). */
  add(seq: number): boolean {
    const r = this.ranges;
    const n = r.length;
    if (n === 0) {
      r.push(seq, seq);
      this.size = 1;
      return true;
    }
    const last = r[n - 1]!;
    if (seq === last + 1) {
      r[n - 1] = seq;
      this.size += 1;
      return true;
    }
    if (seq > last + 1) {
      r.push(seq, seq);
      this.size += 1;
      return true;
    }
    // Out of order: find the first range whose last >= seq - 1.
    let lo = 0;
    let hi = n / 2;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (r[mid * 2 + 1]! < seq - 1) lo = mid + 1;
      else hi = mid;
    }
    const i = lo * 2;
    const first = r[i]!;
    const end = r[i + 1]!;
    if (seq >= first && seq <= end) return false;
    if (seq === end + 1) {
      r[i + 1] = seq;
      // Joins the next range?
      if (i + 2 < r.length && r[i + 2] === seq + 1) r.splice(i + 1, 2);
    } else if (seq === first - 1) {
      r[i] = seq;
    } else {
      r.splice(i, 0, seq, seq);
    }
    this.size += 1;
    return true;
  }

  has(seq: number): boolean {
    const r = this.ranges;
    let lo = 0;
    let hi = r.length / 2;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (r[mid * 2 + 1]! < seq) lo = mid + 1;
      else hi = mid;
    }
    return lo * 2 < r.length && r[lo * 2]! <= seq;
  }

  addAll(other: SeqSet): void {
    for (const [first, last] of other.rangeList()) for (let seq = first; seq <= last; seq += 1) this.add(seq);
  }

  /** The contiguous prefix 1..n held (0 when seq 1 is missing). */
  prefix(): number {
    return this.ranges[0] === 1 ? this.ranges[1]! : 0;
  }

  *rangeList(): Generator<[number, number]> {
    for (let i = 0; i < this.ranges.length; i += 2) yield [this.ranges[i]!, this.ranges[i + 1]!];
  }

  /** How many seqs of `this` are missing from `other` (a sweep over both range lists). */
  countMissingFrom(other: SeqSet): number {
    const mine = this.ranges;
    const theirs = other.ranges;
    let missing = 0;
    let j = 0;
    for (let i = 0; i < mine.length; i += 2) {
      const first = mine[i]!;
      const last = mine[i + 1]!;
      while (j < theirs.length && theirs[j + 1]! < first) j += 2;
      let covered = 0;
      for (let k = j; k < theirs.length && theirs[k]! <= last; k += 2) {
        covered += Math.min(last, theirs[k + 1]!) - Math.max(first, theirs[k]!) + 1;
      }
      missing += last - first + 1 - covered;
    }
    return missing;
  }

  toData(): number[] {
    return this.ranges.slice();
  }

  /** Rebuilds a set from toData() (already sorted and disjoint). */
  static fromData(data: readonly number[]): SeqSet {
    const set = new SeqSet();
    set.ranges = data.slice();
    for (let i = 0; i < data.length; i += 2) set.size += data[i + 1]! - data[i]! + 1;
    return set;
  }
}

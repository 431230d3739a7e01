/** A key naming an unordered pair of users: the same whichever of the two asks. */
export function pairKey(a: string, b: string): string {
  return a < b ? `${a}:${b}` : `${b}:${a}`;
}

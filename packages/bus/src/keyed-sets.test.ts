import { KeyedSets } from './keyed-sets';

describe('KeyedSets', () => {
  const a = { name: 'a' };
  const b = { name: 'b' };
  const c = { name: 'c' };

  it('says when a key gets its first value and loses its last, one value or many', () => {
    const sets = new KeyedSets<{ name: string }>();
    expect(sets.add('k', a)).toBe(true);
    expect(sets.add('k', a)).toBe(false);
    expect([...sets.get('k')]).toEqual([a]);
    expect(sets.add('k', b)).toBe(false);
    expect(sets.add('k', c)).toBe(false);
    expect([...sets.get('k')]).toEqual([a, b, c]);
    expect(sets.delete('k', b)).toBe(false);
    expect(sets.delete('k', a)).toBe(false);
    expect([...sets.get('k')]).toEqual([c]);
    expect(sets.delete('k', a)).toBe(false);
    expect(sets.delete('k', c)).toBe(true);
    expect(sets.has('k')).toBe(false);
    expect([...sets.get('k')]).toEqual([]);
    expect(sets.delete('k', c)).toBe(false);
  });

  it('lists its keys and drops a key with all its values', () => {
    const sets = new KeyedSets<{ name: string }>();
    sets.add('x', a);
    sets.add('y', a);
    sets.add('y', b);
    expect([...sets.keys()]).toEqual(['x', 'y']);
    sets.clear('y');
    expect([...sets.keys()]).toEqual(['x']);
    expect(sets.add('y', c)).toBe(true);
  });
});

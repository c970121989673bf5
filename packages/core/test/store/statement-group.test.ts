import { describe, expect, it } from 'vitest';
import { toBindText } from '../../src/store/statement-group.js';

describe('toBindText', () => {
  it('binds text as it is, booleans and numbers as PostgreSQL spells them, null as NULL', () => {
    expect(toBindText('a"b\\c')).toBe('a"b\\c');
    expect(toBindText(true)).toBe('true');
    expect(toBindText(false)).toBe('false');
    expect(toBindText(42)).toBe('42');
    expect(toBindText(null)).toBeNull();
    expect(toBindText(undefined)).toBeNull();
  });

  it('spells arrays as array literals with every element quoted, so "NULL" stays text', () => {
    expect(toBindText([])).toBe('{}');
    expect(toBindText(['a', null, 'NULL', 'x,y', '{z}', 'q"\\'])).toBe('{"a",NULL,"NULL","x,y","{z}","q\\"\\\\"}');
    expect(toBindText([true, false, null])).toBe('{"true","false",NULL}');
    // A hole in a sparse array is NULL, as pg binds it.
    // eslint-disable-next-line no-sparse-arrays
    expect(toBindText(['1', , '3'])).toBe('{"1",NULL,"3"}');
  });

  it('refuses what it cannot spell', () => {
    expect(() => toBindText({ v: 1 })).toThrow(/cannot bind object/);
    expect(() => toBindText([['nested']])).toThrow(/nested array/);
    expect(() => toBindText(Number.NaN)).toThrow(/cannot bind number/);
  });
});

import { PGlite } from '@electric-sql/pglite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toSqlLiteral } from '../../src/store/sql-literal.js';

const HOSTILE = [
  '',
  "it's",
  "''",
  'back\\slash',
  '\\',
  "\\'",
  '"quoted"',
  '{braces},commas',
  'NULL',
  'line\nbreak\ttab',
  'ünïcødé ✓ 𝄞',
  "'); DROP TABLE t; --",
  ' leading and trailing ',
];

describe('toSqlLiteral', () => {
  it('spells scalars', () => {
    expect(toSqlLiteral(null)).toBe('NULL');
    expect(toSqlLiteral(true)).toBe('TRUE');
    expect(toSqlLiteral(false)).toBe('FALSE');
    expect(toSqlLiteral("it's a \\ test")).toBe("E'it''s a \\\\ test'");
  });

  it('spells arrays with NULL and boolean elements', () => {
    expect(toSqlLiteral(['a', null, 'b"c'])).toBe(`E'{"a",NULL,"b\\\\"c"}'`);
    expect(toSqlLiteral([true, false])).toBe(`E'{t,f}'`);
    expect(toSqlLiteral([])).toBe(`E'{}'`);
  });

  it('refuses NUL, which no PostgreSQL text can hold', () => {
    expect(() => toSqlLiteral('a\u0000b')).toThrow(TypeError);
    expect(() => toSqlLiteral(['a\u0000b'])).toThrow(TypeError);
  });

  describe('read back by PostgreSQL', () => {
    let db: PGlite;
    beforeAll(async () => {
      db = await PGlite.create();
      // Either setting must read the literals the same way.
      await db.exec('SET standard_conforming_strings = off');
    });
    afterAll(async () => db?.close());

    it.each(HOSTILE)('keeps %j intact as a string and as an array element', async (text) => {
      const { rows } = await db.query<{ scalar: string; list: string[] }>(
        `SELECT ${toSqlLiteral(text)}::text AS scalar, ${toSqlLiteral([text, null, text])}::text[] AS list`,
      );
      expect(rows[0]!.scalar).toBe(text);
      expect(rows[0]!.list).toEqual([text, null, text]);
    });

    it('keeps booleans', async () => {
      const { rows } = await db.query<{ list: boolean[] }>(`SELECT ${toSqlLiteral([true, false, null])}::boolean[] AS list`);
      expect(rows[0]!.list).toEqual([true, false, null]);
    });
  });
});

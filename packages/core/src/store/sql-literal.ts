/** A value the request-path statements take: text, booleans, and one-dimensional arrays of them. */
export type SqlValue = string | boolean | null | readonly (string | boolean | null)[];

/**
 * Spells a value as an SQL literal, for `EXECUTE name(…)`, which takes no bind parameters.
 * Strings become `E'…'` literals, in which a backslash and a quote are the only characters that
 * need escaping whatever `standard_conforming_strings` says; arrays become array literals
 * (elements double-quoted, backslash-escaped) inside such a string.
 * @throws TypeError for a value of another kind, or a string holding NUL (no PostgreSQL text can).
 */
export function toSqlLiteral(value: SqlValue): string {
  if (value === null) return 'NULL';
  if (typeof value === 'boolean') return value ? 'TRUE' : 'FALSE';
  if (typeof value === 'string') return quoteString(value);
  if (Array.isArray(value)) return quoteString(`{${value.map(arrayElement).join(',')}}`);
  throw new TypeError(`cannot spell ${typeof value} as an SQL literal`);
}

function quoteString(text: string): string {
  if (text.includes('\u0000')) throw new TypeError('PostgreSQL text cannot hold NUL characters');
  return `E'${text.replace(/[\\']/g, (char) => (char === "'" ? "''" : '\\\\'))}'`;
}

function arrayElement(element: string | boolean | null): string {
  if (element === null) return 'NULL';
  if (typeof element === 'boolean') return element ? 't' : 'f';
  if (typeof element === 'string') return `"${element.replace(/[\\"]/g, (char) => `\\${char}`)}"`;
  throw new TypeError(`cannot spell ${typeof element} as an SQL array element`);
}

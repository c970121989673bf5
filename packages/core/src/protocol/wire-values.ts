/**
 * How a revision travels: modern clients (BitBake 2.10+) get strings; legacy clients get an
 * integer whenever the revision is a plain integer (their servers stored INTEGER columns).
 */
export function toWireRevision(value: string | null, legacy: boolean): string | number | null {
  if (value === null || !legacy || !/^\d+$/.test(value)) return value;
  const number = Number(value);
  // Past 2^53 an integer would be rounded; a string is the honest answer then.
  return Number.isSafeInteger(number) ? number : value;
}

/** A revision as received from any server generation: integers become their decimal strings. */
export function fromWireRevision(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  if (typeof value === 'number' && Number.isSafeInteger(value)) return String(value);
  if (typeof value === 'string') return value;
  throw new TypeError(`not a revision: ${JSON.stringify(value)}`);
}

/**
 * The messages of an error and its causes, outermost first, without repeats: what an operator
 * needs to see on one line (e.g. "cannot open the store" ← "connect ECONNREFUSED …").
 */
export function errorChain(error: unknown, depth = 4): string[] {
  const parts: string[] = [];
  let current: unknown = error;
  while (current && parts.length < depth) {
    const text = current instanceof Error ? current.message : String(current);
    if (!parts.includes(text)) parts.push(text);
    current = current instanceof Error ? current.cause : undefined;
  }
  return parts;
}

/**
 * Calls an observer's hook (metrics) if there is one. A hook that throws has a bug of its own,
 * which must never fail or stall the requests it observes, nor end the process from a timer
 * callback: its error is dropped.
 */
export function notify<A>(hook: ((value: A) => void) | undefined, value: A): void {
  if (hook === undefined) return;
  try {
    hook(value);
  } catch {
    // dropped: see above
  }
}

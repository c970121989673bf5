/**
 * An integer with thousands separators ("20,000"), for reports. `toLocaleString` would do, but
 * its first call loads locale data and costs more CPU than thousands of stress requests.
 */
export function formatCount(count: number): string {
  return String(count).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

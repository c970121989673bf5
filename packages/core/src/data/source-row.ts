/**
 * One row as a source holds it, before checking: BitBake's legacy tables keep integer values
 * (and allow NULL), its modern table text; a key may be anything a sqlite TEXT column holds.
 */
export interface SourceRow {
  readonly version: unknown;
  readonly pkgarch: unknown;
  readonly checksum: unknown;
  readonly value: unknown;
  /** Where the row came from, for messages (`line 12`, `row 40031`). */
  readonly where?: string;
}

/** A source of rows to import, already opened. */
export interface ImportSource {
  /** What the importer found, e.g. `BitBake sqlite, table PRMAIN_nohist (Yocto ≤ 5.0, integer values)`. */
  readonly description: string;
  /** How many rows it holds, when known before reading (drives the progress bar). */
  readonly size?: number;
  /** The rows, in the source's order. Read once. */
  rows(): AsyncIterable<SourceRow>;
  /** Releases what the source holds (e.g. the sqlite image in memory). */
  close(): Promise<void>;
}

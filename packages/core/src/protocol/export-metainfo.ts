/** One column description of BitBake's `PRMAIN` table, as `export` reports it with colinfo. */
export interface ColumnInfo {
  readonly name: string;
  readonly type: 'TEXT' | 'INTEGER';
  readonly notnull: 0 | 1;
  readonly dflt_value: null;
  readonly pk: number;
}

/** The `metainfo` of an export with colinfo (docs/protocol.md §4.6). */
export interface ExportMetainfo {
  readonly tbl_name: string;
  readonly core_ver: string;
  readonly col_info: readonly ColumnInfo[];
}

const keyColumns: readonly ColumnInfo[] = [
  { name: 'version', type: 'TEXT', notnull: 1, dflt_value: null, pk: 1 },
  { name: 'pkgarch', type: 'TEXT', notnull: 1, dflt_value: null, pk: 2 },
  { name: 'checksum', type: 'TEXT', notnull: 1, dflt_value: null, pk: 3 },
];

/**
 * Describes BitBake's own table whatever our storage looks like, since tools print it into export
 * files: modern servers (BitBake 2.10+) have one `PRMAIN` table with TEXT values; legacy ones had
 * `PRMAIN_nohist` / `PRMAIN_hist` with INTEGER values.
 */
export function exportMetainfo(options: { legacy: boolean; history: boolean }): ExportMetainfo {
  if (!options.legacy) {
    return {
      tbl_name: 'PRMAIN',
      core_ver: '2.0.0',
      col_info: [...keyColumns, { name: 'value', type: 'TEXT', notnull: 0, dflt_value: null, pk: 4 }],
    };
  }
  return {
    tbl_name: options.history ? 'PRMAIN_hist' : 'PRMAIN_nohist',
    core_ver: '1.0.0',
    col_info: [...keyColumns, { name: 'value', type: 'INTEGER', notnull: 0, dflt_value: null, pk: 0 }],
  };
}

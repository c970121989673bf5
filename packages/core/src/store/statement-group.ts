import type { PipelinedStatement } from '../engine/pipelined-session.js';

/** A field of a RowDescription message, as pg's protocol parser gives it. */
interface FieldDescription {
  readonly name: string;
  readonly dataTypeID: number;
}

/** The parts of pg's connection (`client.connection`) a group writes to. */
interface GroupConnection {
  readonly stream: { cork?(): void; uncork?(): void };
  /** Named statements the server has parsed on this connection (kept by pg). */
  readonly parsedStatements: Record<string, string | undefined>;
  /** Named statements sent for parsing and not yet confirmed (pg 8.17 and later). */
  readonly submittedNamedStatements?: Record<string, string | undefined>;
  parse(query: { text: string; name: string; types: unknown[] }): void;
  bind(config: { portal: string; statement: string; values: (string | null)[] }): void;
  describe(message: { type: 'P'; name: string }): void;
  execute(config: { portal: string; rows: number }): void;
  sync(): void;
  sendCopyFail(message: string): void;
}

/** How a column's text is read into a value (pg's type parsers, text format). */
export type TypeParserLookup = (dataTypeId: number) => (text: string) => unknown;

/**
 * Several statements sent to PostgreSQL as one group of extended-protocol messages closed by a
 * single Sync, as a query object that pg's `client.query` accepts (its "submittable" interface).
 * pg's own queries end each statement with a Sync, so the server answers (and wakes the client)
 * once per statement; a group is answered once, in one write, and written in one.
 *
 * Statements named in `names` are parsed once per connection and bound by name afterwards; pg's
 * record of parsed statements is shared, so its own queries and groups never parse one twice. The
 * server runs the statements in order and, at the first error, skips the rest of the group up to
 * the Sync: the group fails with that error. COPY is refused (the server would wait for its data
 * while the rest of the group arrives).
 */
export class StatementGroup {
  /** Set by pg's `client.query` (wrapped there for its query timeout): called once, with rows or an error. */
  callback: ((error: Error | null, rows?: unknown[][]) => void) | undefined;
  readonly #statements: readonly PipelinedStatement[];
  readonly #names: readonly string[];
  readonly #parseType: TypeParserLookup;
  readonly #rows: unknown[][] = [];
  #current: unknown[] = [];
  #parsers: { name: string; parse: (text: string) => unknown }[] = [];
  /** Names this group sent for parsing. */
  #parsing: string[] = [];
  #connection: GroupConnection | undefined;
  #parseError: Error | undefined;
  #sent = false;
  #answered = false;
  #settled = false;

  constructor(statements: readonly PipelinedStatement[], names: ReadonlyMap<string, string>, parseType: TypeParserLookup) {
    this.#statements = statements;
    this.#names = statements.map(([text]) => names.get(text) ?? '');
    this.#parseType = parseType;
  }

  /**
   * The name and text of the statement being answered. pg reads them on ParseComplete (to record
   * the statement as parsed) and the name on an error (to forget one sent for parsing).
   */
  get name(): string {
    return this.#names[this.#rows.length] ?? '';
  }

  get text(): string | undefined {
    return this.#statements[this.#rows.length]?.[0];
  }

  /** True from the group's write until the server's ReadyForQuery: the server may be running it. */
  get inFlight(): boolean {
    return this.#sent && !this.#answered;
  }

  submit(connection: GroupConnection): Error | null {
    this.#connection = connection;
    const submitted = connection.submittedNamedStatements;
    // Everything that can be refused is checked before anything is written: a refused group
    // sends nothing (pg then fails it through `handleError`).
    // COPY would leave the server waiting for data while the rest of the group arrives.
    const copy = this.#statements.find(([text]) => /^\s*copy\b/i.test(text));
    if (copy) return new Error('COPY cannot be sent in a statement group');
    let values: (string | null)[][];
    try {
      values = this.#statements.map(([, parameters]) => parameters.map(toBindText));
    } catch (error) {
      return error as Error;
    }
    // Which statements to parse: every unnamed one, and named ones neither parsed nor on their way.
    const toParse: boolean[] = [];
    const namedHere = new Map<string, string>();
    for (const [index, [text]] of this.#statements.entries()) {
      const name = this.#names[index]!;
      const known = name === '' ? undefined : (connection.parsedStatements[name] ?? submitted?.[name] ?? namedHere.get(name));
      if (known !== undefined && known !== text) return new Error(`the prepared statement ${name} is already used for a different statement`);
      if (name !== '' && known === undefined) namedHere.set(name, text);
      toParse.push(known === undefined);
    }
    // One write for the whole group.
    this.#sent = true;
    connection.stream.cork?.();
    try {
      this.#statements.forEach(([text], index) => {
        const name = this.#names[index]!;
        if (toParse[index]) {
          connection.parse({ text, name, types: [] });
          if (name !== '') {
            if (submitted) submitted[name] = text;
            this.#parsing.push(name);
          }
        }
        connection.bind({ portal: '', statement: name, values: values[index]! });
        connection.describe({ type: 'P', name: '' });
        connection.execute({ portal: '', rows: 0 });
      });
      connection.sync();
    } finally {
      connection.stream.uncork?.();
    }
    return null;
  }

  handleRowDescription(message: { fields: FieldDescription[] }): void {
    this.#parsers = message.fields.map((field) => ({ name: field.name, parse: this.#parseType(field.dataTypeID) }));
  }

  handleDataRow(message: { fields: (string | null)[] }): void {
    if (this.#parseError) return;
    const row: Record<string, unknown> = {};
    try {
      message.fields.forEach((text, index) => {
        const column = this.#parsers[index]!;
        row[column.name] = text === null ? null : column.parse(text);
      });
    } catch (error) {
      // A type parser that throws (a library user's own) fails the group once the server has
      // answered it all: thrown here, it would escape pg's socket handler and desynchronise it.
      this.#parseError = error as Error;
      return;
    }
    this.#current.push(row);
  }

  handleCommandComplete(): void {
    // Ran, so parsed: recorded here too, whatever pg's version records on ParseComplete.
    const name = this.name;
    if (name !== '' && this.#connection) {
      this.#connection.parsedStatements[name] = this.text;
      delete this.#connection.submittedNamedStatements?.[name];
    }
    this.#rows.push(this.#current);
    this.#current = [];
    this.#parsers = [];
  }

  handleEmptyQuery(): void {
    this.handleCommandComplete();
  }

  handleError(error: Error): void {
    this.#fail(error);
  }

  handleReadyForQuery(): void {
    this.#answered = true;
    if (this.#parseError) {
      this.#fail(this.#parseError);
      return;
    }
    if (this.#settled) return;
    this.#settled = true;
    this.callback?.(null, this.#rows);
  }

  handlePortalSuspended(): void {
    // Never asked for: every Execute asks for all rows.
  }

  handleCopyInResponse(connection: GroupConnection): void {
    connection.sendCopyFail('COPY is not part of a statement group');
  }

  handleCopyData(): void {
    // No COPY is ever started by a group.
  }

  #fail(error: Error): void {
    // The server skips every message after an error up to the Sync: statements of this group
    // that were sent for parsing and not parsed by then never will be.
    const connection = this.#connection;
    const submitted = connection?.submittedNamedStatements;
    if (connection && submitted) {
      for (const name of this.#parsing) if (connection.parsedStatements[name] === undefined) delete submitted[name];
    }
    if (this.#settled) return;
    this.#settled = true;
    this.callback?.(error);
  }
}

/**
 * A bind parameter as text: the request path binds text, booleans, numbers and one-dimensional
 * arrays of them (array literal, elements double-quoted and backslash-escaped).
 */
export function toBindText(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  if (typeof value === 'string') return value;
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  // Array.from visits holes too (map skips them): a hole binds as NULL, as in pg.
  if (Array.isArray(value)) return `{${Array.from(value, arrayElement).join(',')}}`;
  throw new TypeError(`cannot bind ${typeof value} as a statement parameter`);
}

function arrayElement(element: unknown): string {
  if (element === null || element === undefined) return 'NULL';
  if (Array.isArray(element)) throw new TypeError('cannot bind a nested array as a statement parameter');
  return `"${toBindText(element)!.replace(/[\\"]/g, (char) => `\\${char}`)}"`;
}

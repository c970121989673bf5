import { connect, type Socket } from 'node:net';

/**
 * A deliberately simple BitBake-style client for end-to-end tests: raw bytes out, lines in.
 * It shares no code with the codec under test.
 */
export class RawSocket {
  readonly #socket: Socket;
  #buffer = '';
  #waiters: (() => void)[] = [];
  #ended = false;

  private constructor(socket: Socket) {
    this.#socket = socket;
    socket.setEncoding('utf8');
    socket.on('data', (text: string) => {
      this.#buffer += text;
      this.#wake();
    });
    socket.on('close', () => {
      this.#ended = true;
      this.#wake();
    });
    socket.on('error', () => {});
  }

  /** Connects to `host:port`, from `localAddress` if given (e.g. 127.0.0.2, to test access rules). */
  static open(port: number, host = '127.0.0.1', localAddress?: string): Promise<RawSocket> {
    return new Promise((resolve, reject) => {
      const socket = connect({ port, host, localAddress }, () => resolve(new RawSocket(socket)));
      socket.once('error', reject);
    });
  }

  /** Opens a connection and sends BitBake's hello (`PRSERVICE 1.0`, `needs-headers: false`). */
  static async greeted(port: number): Promise<RawSocket> {
    const raw = await RawSocket.open(port);
    raw.write('PRSERVICE 1.0\nneeds-headers: false\n\n');
    return raw;
  }

  write(text: string): void {
    this.#socket.write(text);
  }

  /** Sends one request as a single JSON line. */
  send(message: unknown): void {
    this.write(`${JSON.stringify(message)}\n`);
  }

  /** Reads one line (without its newline); rejects if the connection ends first. */
  async readLine(timeoutMs = 10_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const newline = this.#buffer.indexOf('\n');
      if (newline >= 0) {
        const line = this.#buffer.slice(0, newline);
        this.#buffer = this.#buffer.slice(newline + 1);
        return line;
      }
      if (this.#ended) throw new Error(`connection closed; unread: ${JSON.stringify(this.#buffer.slice(0, 200))}`);
      if (Date.now() > deadline) throw new Error('timed out waiting for a line');
      await this.#wait(deadline - Date.now());
    }
  }

  /** Reads one response in either form (one line, or a chunk stream) and parses it. */
  async readMessage(timeoutMs = 10_000): Promise<unknown> {
    const first = await this.readLine(timeoutMs);
    const parsed = JSON.parse(first) as unknown;
    if (typeof parsed !== 'object' || parsed === null || !('chunk-stream' in parsed)) return parsed;
    const pieces: string[] = [];
    for (;;) {
      const piece = await this.readLine(timeoutMs);
      if (piece === '') return JSON.parse(pieces.join('')) as unknown;
      pieces.push(piece);
    }
  }

  /** Resolves true once the server has closed the connection. */
  async closedByPeer(timeoutMs = 10_000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.#ended && Date.now() < deadline) await this.#wait(deadline - Date.now());
    return this.#ended;
  }

  /** Everything received and not yet read. */
  get unread(): string {
    return this.#buffer;
  }

  /** Stops reading from the socket, so that the peer's writes back up. */
  pause(): void {
    this.#socket.pause();
  }

  resume(): void {
    this.#socket.resume();
  }

  close(): void {
    this.#socket.destroy();
  }

  #wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, Math.max(ms, 1));
      this.#waiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  #wake(): void {
    for (const wake of this.#waiters.splice(0)) wake();
  }
}

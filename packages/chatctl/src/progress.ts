/**
 * A one-line progress bar on stderr (stdout carries the data). On a terminal it redraws in place;
 * otherwise it prints a line at most every 2 s so logs stay readable.
 */
export class ProgressBar {
  readonly #started = Date.now();
  #lastDraw = 0;

  constructor(
    private readonly stream: NodeJS.WriteStream | { write(s: string): boolean; isTTY?: boolean },
    private readonly label: string,
    private readonly enabled = true,
  ) {}

  update(fraction: number, count: number, force = false): void {
    if (!this.enabled) return;
    const now = Date.now();
    const tty = this.stream.isTTY === true;
    if (!force && now - this.#lastDraw < (tty ? 100 : 2000)) return;
    this.#lastDraw = now;
    const f = Math.min(1, Math.max(0, fraction));
    const width = 30;
    const filled = Math.round(f * width);
    const seconds = (now - this.#started) / 1000;
    const rate = seconds > 0 ? Math.round(count / seconds) : 0;
    const line = `${this.label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(f * 100).toFixed(1)}% ${count} events ${rate}/s`;
    this.stream.write(tty ? `\r${line}\x1b[K` : `${line}\n`);
  }

  done(count: number): void {
    if (!this.enabled) return;
    this.update(1, count, true);
    if (this.stream.isTTY === true) this.stream.write('\n');
  }
}

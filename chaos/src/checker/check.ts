import type { Entry } from '../history/types.js';

export type Violation = { what: string; excerpt: Entry[] };

/**
 * The verdict of one check: how many things it looked at and what it found wrong. `invariant`s fail the
 * run; `finding`s are reported (something the contract does not promise, or a figure worth a look).
 */
export type CheckResult = {
  id: string;
  name: string;
  severity: 'invariant' | 'finding';
  checked: number;
  count: number;
  /** The first violations with the history entries that show each. */
  violations: Violation[];
  figures: Record<string, number>;
};

const KEPT_VIOLATIONS = 20;
const EXCERPT_LINES = 30;

export class Check {
  checked = 0;
  count = 0;
  readonly figures: Record<string, number> = {};
  readonly #violations: Violation[] = [];

  constructor(
    readonly id: string,
    readonly name: string,
    readonly severity: 'invariant' | 'finding' = 'invariant',
  ) {}

  /** Records a violation; the excerpt is built only for the first few. */
  violation(what: string, excerpt: () => readonly Entry[]): void {
    this.count++;
    if (this.#violations.length < KEPT_VIOLATIONS) {
      this.#violations.push({ what, excerpt: excerpt().slice(0, EXCERPT_LINES) });
    }
  }

  figure(name: string, value: number): void {
    this.figures[name] = value;
  }

  result(): CheckResult {
    return {
      id: this.id,
      name: this.name,
      severity: this.severity,
      checked: this.checked,
      count: this.count,
      violations: this.#violations,
      figures: this.figures,
    };
  }
}

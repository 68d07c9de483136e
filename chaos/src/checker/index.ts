import type { History } from '../history/types.js';
import type { CheckResult } from './check.js';
import { checkCheckpoints } from './checkpoints.js';
import { checkCommands } from './commands.js';
import { checkDeliveries } from './deliveries.js';
import { indexHistory } from './history-index.js';
import { checkLog } from './log.js';
import { checkReadModels } from './read-models.js';
import { type RecoveryFigures, recoveryFigures } from './recovery.js';

export type { CheckResult, Violation } from './check.js';
export type { ClassRow, FaultRow, Recovery, RecoveryFigures } from './recovery.js';

export type Verdict = {
  checks: CheckResult[];
  recovery: RecoveryFigures;
  /** No invariant was violated. */
  ok: boolean;
};

/** Checks a whole run's history: a pure function, so a deliberately broken history must fail it. */
export const checkHistory = (history: History): Verdict => {
  const ix = indexHistory(history);
  const commands = checkCommands(ix);
  const checks = [
    ...commands.checks,
    ...checkLog(ix),
    ...checkDeliveries(ix),
    ...checkReadModels(ix),
    ...checkCheckpoints(ix),
  ]
    .map((c) => c.result())
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return {
    checks,
    recovery: recoveryFigures(ix, commands.figures),
    ok: checks.every((c) => c.severity !== 'invariant' || c.count === 0),
  };
};

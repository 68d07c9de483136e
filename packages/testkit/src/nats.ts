import { randomBytes } from 'node:crypto';
import { runId } from './infra.js';

/** A NATS subject prefix of its own for one test file, e.g. `t_r1a2b3c4_9f8e7d`. */
export const testSubjectPrefix = (): string => `t_${runId()}_${randomBytes(3).toString('hex')}`;

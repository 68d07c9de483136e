import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { REPO_ROOT } from '@chat/processes';

/**
 * A repository module (`packages/…/src/index.ts`) loaded by path at run time: the bench does not depend
 * on the system's packages at type level, so each user states the shape it expects of what it takes.
 */
export const importByPath = async (file: string): Promise<Record<string, unknown>> =>
  (await import(pathToFileURL(join(REPO_ROOT, file)).href)) as Record<string, unknown>;

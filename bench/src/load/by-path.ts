import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { REPO_ROOT } from '@chat/processes';

/**
 * A repository module (`packages/…/src/index.ts`) loaded by path at run time: the bench does not depend
 * on the system's packages at type level, so each user states the shape it expects of what it takes.
 */
export const importByPath = async (file: string): Promise<Record<string, unknown>> =>
  (await import(pathToFileURL(join(REPO_ROOT, file)).href)) as Record<string, unknown>;

/**
 * The named exports of repository modules, each `[file, export]`, typed as the caller's `M` (which the
 * bench cannot check against the module: it only checks that every export is there).
 */
export const importExports = async <M extends Record<string, unknown>>(
  exports: {
    [K in keyof M]: readonly [file: string, name: string];
  },
): Promise<M> => {
  const entries = await Promise.all(
    Object.entries(exports).map(async ([key, [file, name]]) => {
      const value = (await importByPath(file))[name];
      if (value === undefined) throw new Error(`${file} exports no ${name}`);
      return [key, value] as const;
    }),
  );
  return Object.fromEntries(entries) as M;
};

import { defineConfig } from 'vitest/config';

// Test tiers live in the file name: *.unit.spec.ts (pure, no I/O), *.int.spec.ts (real Postgres/NATS),
// *.e2e.spec.ts (several real processes). Every int/e2e file gets its own database and NATS prefix
// from @chat/testkit, so files run in parallel and repeated runs never see each other's data.
const exclude = ['**/node_modules/**', '**/dist/**'];

/**
 * unit and int files run two at a time. Vitest's default on a 2-core host is ONE file at a time
 * (cores − 1), while an int file mostly waits on Postgres and NATS. Each int file has its own database
 * and NATS prefix; those that start processes run alone (INT_ALONE).
 */
const PARALLEL_WORKERS = 2;

/**
 * int files that run alone, after the parallel ones: each starts service or chatctl processes through
 * tsx (seconds of CPU per start; the command-api harness's startProjector among them) inside a 60 s
 * test or hook timeout, which a neighbour's load could exceed. Four of them did beside another file on
 * a host at load 20–37 (export, webhook; moderation and queries in their beforeAll).
 */
const INT_ALONE = [
  'packages/chatctl/test/chatctl.int.spec.ts',
  'packages/chatctl/test/webhooks.int.spec.ts',
  'services/command-api/test/export.int.spec.ts',
  'services/command-api/test/moderation.int.spec.ts',
  'services/command-api/test/openapi-lint.int.spec.ts',
  'services/command-api/test/queries.int.spec.ts',
  'services/command-api/test/threads-search.int.spec.ts',
  'services/notifier/test/crash.int.spec.ts',
  'services/notifier/test/notifier.int.spec.ts',
  'services/notifier/test/webhook.int.spec.ts',
  'services/projector/test/crash.int.spec.ts',
];

export default defineConfig({
  test: {
    projects: [
      { test: { name: 'unit', include: ['**/*.unit.spec.ts'], exclude, maxWorkers: PARALLEL_WORKERS } },
      // Type tests (`expectTypeOf`) fail only when type-checked: tsc runs over them as a test of its own.
      {
        test: {
          name: 'types',
          include: [],
          typecheck: {
            enabled: true,
            only: true,
            include: ['packages/client/**/*.types.unit.spec.ts'],
            exclude,
            // From sources (no project references): fresh clones have no built declarations.
            tsconfig: 'packages/client/tsconfig.types.json',
          },
        },
      },
      {
        test: {
          name: 'int',
          include: ['**/*.int.spec.ts'],
          exclude: [...exclude, ...INT_ALONE],
          testTimeout: 60_000,
          hookTimeout: 60_000,
          globalSetup: ['packages/testkit/src/global-setup.ts'],
          maxWorkers: PARALLEL_WORKERS,
        },
      },
      {
        test: {
          name: 'int-alone',
          include: INT_ALONE,
          exclude,
          testTimeout: 60_000,
          hookTimeout: 60_000,
          globalSetup: ['packages/testkit/src/global-setup.ts'],
          fileParallelism: false,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['**/*.e2e.spec.ts'],
          exclude,
          testTimeout: 120_000,
          hookTimeout: 120_000,
          globalSetup: ['packages/testkit/src/global-setup.ts'],
          // One file at a time, after the parallel projects' files (vitest runs such files last, with
          // int-alone's). Two at a time was tried: on a host at load 25–33 four of seven files that
          // looked isolated timed out starting their processes (hook 120 s), and erasure's chatctl rebuild
          // took 100 s of its 120 s beside another file (27 s alone).
          fileParallelism: false,
        },
      },
    ],
  },
});

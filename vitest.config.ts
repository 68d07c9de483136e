import { defineConfig } from 'vitest/config';

// Test tiers live in the file name: *.unit.spec.ts (pure, no I/O), *.int.spec.ts (real Postgres/NATS),
// *.e2e.spec.ts (several real processes). Every int/e2e file gets its own database and NATS prefix
// from @chat/testkit, so files run in parallel and repeated runs never see each other's data.
const exclude = ['**/node_modules/**', '**/dist/**'];

export default defineConfig({
  test: {
    projects: [
      { test: { name: 'unit', include: ['**/*.unit.spec.ts'], exclude } },
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
          exclude,
          testTimeout: 60_000,
          hookTimeout: 60_000,
          globalSetup: ['packages/testkit/src/global-setup.ts'],
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
          fileParallelism: false,
        },
      },
    ],
  },
});

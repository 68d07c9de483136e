import type { Scenario } from '../context.js';

export const b5Rebuild: Scenario = {
  name: 'b5-rebuild',
  title: 'B5 rebuild of the read models',
  run: async (ctx) => {
    ctx.rows.push({
      scenario: 'B5 rebuild',
      case: 'pending',
      metrics: { skipped: 'not wired yet' },
      budgets: [],
      generatorCores: null,
      generatorBottleneck: false,
    });
  },
};

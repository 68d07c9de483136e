import { describe, expect, it } from 'vitest';
import { RetriesExhaustedError, retryDelayMs, retryPolicy, withRetry } from './policy.js';

const policy = retryPolicy({ name: 'test', baseMs: 10, maxMs: 100, maxAttempts: 4 });

describe('retryDelayMs', () => {
  it('doubles the ceiling per failed attempt up to maxMs, with full jitter below it', () => {
    expect([1, 2, 3, 4, 5, 40].map((n) => retryDelayMs(policy, n, () => 0.999999))).toEqual([
      9, 19, 39, 79, 99, 99,
    ]);
    expect(retryDelayMs(policy, 3, () => 0)).toBe(0);
  });
});

describe('withRetry', () => {
  it('retries a failing attempt until it succeeds', async () => {
    let calls = 0;
    const result = await withRetry(
      policy,
      async () => {
        calls++;
        if (calls < 3) throw new Error('not yet');
        return 'done';
      },
      { random: () => 0 },
    );
    expect({ result, calls }).toEqual({ result: 'done', calls: 3 });
  });

  it('gives up after maxAttempts with the last error as the cause', async () => {
    let calls = 0;
    const failing = withRetry(
      policy,
      async () => {
        calls++;
        throw new Error(`failure ${calls}`);
      },
      { random: () => 0 },
    );
    await expect(failing).rejects.toBeInstanceOf(RetriesExhaustedError);
    await expect(failing).rejects.toMatchObject({ attempts: 4, cause: { message: 'failure 4' } });
  });

  it('throws a non-retryable error at once', async () => {
    let calls = 0;
    const failing = withRetry(
      policy,
      async () => {
        calls++;
        throw new TypeError('bad input');
      },
      { retryable: (e) => !(e instanceof TypeError), random: () => 0 },
    );
    await expect(failing).rejects.toBeInstanceOf(TypeError);
    expect(calls).toBe(1);
  });
});

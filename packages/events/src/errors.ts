import { z } from 'zod';

// The error catalogue of API.md §2: one code, one status, everywhere (HTTP bodies and WS error frames).

export const ERROR_STATUS = {
  validation_failed: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  payload_too_large: 413,
  rate_limited: 429,
  unavailable: 503,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;
export const ERROR_CODES = Object.keys(ERROR_STATUS) as [ErrorCode, ...ErrorCode[]];

/** What each code means, as the OpenAPI document describes the status. */
export const ERROR_DESCRIPTIONS: Record<ErrorCode, string> = {
  validation_failed: 'validation_failed: the body, path or query does not match the schema',
  unauthorized: 'unauthorized: missing, invalid or expired token',
  forbidden: 'forbidden: authenticated but not allowed',
  not_found: 'not_found: unknown, or the caller is not a member',
  conflict: 'conflict: the request contradicts what exists',
  payload_too_large: 'payload_too_large: body over 64 KiB',
  rate_limited: 'rate_limited: too many requests (Retry-After header)',
  unavailable: 'unavailable: a dependency is down; nothing was written',
};

export const validationIssueSchema = z.object({
  path: z.array(z.union([z.string(), z.number()])),
  message: z.string(),
});
export type ValidationIssue = z.infer<typeof validationIssueSchema>;

export const apiErrorSchema = z.object({
  code: z.enum(ERROR_CODES),
  message: z.string(),
  /** `validation_failed`: a list of ValidationIssue; `rate_limited`: `{retryAfterSeconds}`. */
  details: z.unknown().optional(),
});
export type ApiError = z.infer<typeof apiErrorSchema>;

/** The body of every error answer (API.md §2). */
export const apiErrorBodySchema = z.object({ error: apiErrorSchema });
export type ApiErrorBody = z.infer<typeof apiErrorBodySchema>;

/** A failure the client is told about, with its contract code. Domain code throws or returns these. */
export class ChatError extends Error {
  override readonly name = 'ChatError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: unknown,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  get status(): number {
    return ERROR_STATUS[this.code];
  }

  toBody(): ApiErrorBody {
    return {
      error: {
        code: this.code,
        message: this.message,
        ...(this.details === undefined ? {} : { details: this.details }),
      },
    };
  }
}

/** Zod issues → the `details` list of a `validation_failed` error. */
export const validationIssues = (
  issues: readonly { path: readonly PropertyKey[]; message: string }[],
  prefix: (string | number)[] = [],
): ValidationIssue[] =>
  issues.map((i) => ({
    path: [...prefix, ...i.path.map((p) => (typeof p === 'number' ? p : String(p)))],
    message: i.message,
  }));

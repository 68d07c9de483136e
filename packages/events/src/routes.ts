import type { z } from 'zod';
import { apiErrorBodySchema, ERROR_DESCRIPTIONS, ERROR_STATUS, type ErrorCode } from './errors.js';

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/**
 * One HTTP route of the API, as data: what it takes and what it answers. The command-api registers its
 * routes from these (request validation, response serialization, the OpenAPI document) and the SDK takes
 * its result types from them, so a shape is written once.
 */
export type RouteShape = {
  /** `operationId` in the OpenAPI document (for commands also the NATS subject's last token). */
  readonly name: string;
  readonly method: HttpMethod;
  /** fastify path syntax, e.g. `/v1/conversations/:conversationId/messages`. */
  readonly path: string;
  readonly summary: string;
  readonly tags: readonly string[];
  readonly params: z.ZodObject;
  readonly querystring?: z.ZodType;
  readonly body?: z.ZodType;
  /** The success answers by status. */
  readonly responses: { readonly [status: number]: z.ZodType };
  /** Every error the route can answer (API.md §2). */
  readonly errors: readonly ErrorCode[];
  /**
   * A route that also streams its success answer as NDJSON (`Accept: application/x-ndjson`): the
   * schema of one line. The route's first success status documents both media types.
   */
  readonly ndjsonLine?: z.ZodType;
};

/** The statuses a route answers successfully. */
export type SuccessStatus<S extends RouteShape> = keyof S['responses'] & number;

/** The body of a success answer. */
export type ResultOf<S extends RouteShape> = z.output<S['responses'][SuccessStatus<S>]>;

/** Every answer of a route, by status: its success bodies and the error body for each error code. */
export const responseSchemas = <S extends RouteShape>(
  shape: S,
): S['responses'] & Record<number, z.ZodType> => {
  const responses: Record<number, z.ZodType> = { ...shape.responses };
  for (const code of shape.errors) {
    const status = ERROR_STATUS[code];
    const described = shape.errors
      .filter((c) => ERROR_STATUS[c] === status)
      .map((c) => ERROR_DESCRIPTIONS[c]);
    responses[status] = apiErrorBodySchema.describe(described.join('; '));
  }
  return responses as S['responses'] & Record<number, z.ZodType>;
};

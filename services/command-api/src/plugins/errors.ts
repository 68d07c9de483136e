import { type ApiErrorBody, ChatError, ERROR_STATUS, type ErrorCode, validationIssues } from '@chat/events';
import type { FastifyError, FastifyInstance, FastifySchemaCompiler, RouteOptions } from 'fastify';
import { z } from 'zod';

/** A request part (body, params, querystring, headers) that failed its zod schema. */
export class RequestValidationError extends Error {
  override readonly name = 'RequestValidationError';
  readonly statusCode = 400;
  constructor(
    readonly part: string,
    readonly issues: readonly z.core.$ZodIssue[],
  ) {
    super(`invalid ${part}`);
  }
}

/** 429 with the seconds after which the caller may try again (the `Retry-After` header). */
export class RateLimitedError extends ChatError {
  constructor(readonly retryAfterSeconds: number) {
    super('rate_limited', 'too many requests, slow down', { retryAfterSeconds });
  }
}

/**
 * Validates with the route's zod schema and keeps zod's issues, so `details[].path` keeps numbers for
 * array indexes (`["members", 0]`) instead of a JSON-pointer string.
 */
export const zodValidatorCompiler: FastifySchemaCompiler<z.ZodType> =
  ({ schema, httpPart }) =>
  (data) => {
    const result = schema.safeParse(data);
    if (result.success) return { value: result.data };
    return { error: new RequestValidationError(httpPart ?? 'request', result.error.issues) };
  };

const STATUS_CODES = new Map<number, ErrorCode>(
  Object.entries(ERROR_STATUS).map(([code, status]) => [status, code as ErrorCode]),
);

/** Any error → the one error body of API.md §2 with its matching status. */
export const toApiError = (err: unknown): { status: number; body: ApiErrorBody; retryAfter?: number } => {
  if (err instanceof RateLimitedError)
    return { status: err.status, body: err.toBody(), retryAfter: err.retryAfterSeconds };
  if (err instanceof ChatError) return { status: err.status, body: err.toBody() };
  if (err instanceof RequestValidationError) {
    const details = validationIssues(err.issues);
    return body('validation_failed', `invalid ${err.part}`, details);
  }
  const fastifyError = err as Partial<FastifyError> | undefined;
  const status = fastifyError?.statusCode;
  if (fastifyError?.code === 'FST_ERR_CTP_BODY_TOO_LARGE' || status === 413)
    return body('payload_too_large', 'request body is larger than 64 KiB');
  if (err instanceof SyntaxError || fastifyError?.code?.startsWith('FST_ERR_CTP_'))
    return body('validation_failed', `invalid request body: ${fastifyError?.message ?? 'unreadable'}`, [
      { path: [], message: fastifyError?.message ?? 'unreadable body' },
    ]);
  if (status !== undefined && status >= 400 && status < 500) {
    const code = STATUS_CODES.get(status) ?? 'validation_failed';
    const message = fastifyError?.message ?? code;
    return code === 'validation_failed' ? body(code, message, [{ path: [], message }]) : body(code, message);
  }
  return body('unavailable', 'the service cannot answer right now');
};

/**
 * The raw HTTP answer to a request Node's parser refused before fastify saw it: request line and
 * headers over Node's 16 KiB, malformed HTTP, or a request that did not arrive in time. Fastify's own
 * answer there (431/400/408 with its own body) is outside the catalogue; this is the API.md body, and
 * the connection closes, as Node requires after a parse error.
 */
export const clientErrorResponse = (err: { code?: string }): string => {
  const message =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? 'request line and headers are larger than 16 KiB'
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? 'the request did not arrive in time'
        : 'malformed HTTP request';
  const { status, body: errorBody } = body('validation_failed', message, [{ path: [], message }]);
  const text = JSON.stringify(errorBody);
  return `HTTP/1.1 ${status} Bad Request\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n${text}`;
};

const body = (code: ErrorCode, message: string, details?: unknown) => ({
  status: ERROR_STATUS[code],
  body: { error: { code, message, ...(details === undefined ? {} : { details }) } },
});

/** The error body of API.md §2, for the OpenAPI document. */
export const apiErrorSchema = z.object({
  error: z.object({ code: z.string(), message: z.string(), details: z.unknown().optional() }),
});

const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/**
 * The error statuses a documented route can answer whatever its own schema says, added to its OpenAPI
 * entry: 429 (every route is rate limited), and for `/v1` routes 401 (all authenticate), 503 (all
 * reach a dependency), 400 when they validate input and 413 when they accept a body (the body limit).
 */
export const documentedErrorStatuses = (route: Pick<RouteOptions, 'method' | 'url' | 'schema'>): number[] => {
  const schema = route.schema;
  if (!schema?.response) return [];
  const statuses = [429];
  if (!route.url.startsWith('/v1/')) return statuses;
  statuses.push(401, 503);
  if (schema.body || schema.querystring || schema.params) statuses.push(400);
  const methods = Array.isArray(route.method) ? route.method : [route.method];
  if (methods.some((m) => BODY_METHODS.has(m))) statuses.push(413);
  return statuses;
};

/** The single error handler and the not-found handler of the whole app (root context). */
export const registerErrorHandling = (app: FastifyInstance): void => {
  app.addHook('onRoute', (route) => {
    const response = route.schema?.response as Record<number, unknown> | undefined;
    if (!response) return;
    for (const status of documentedErrorStatuses(route)) response[status] ??= apiErrorSchema;
  });
  app.setErrorHandler((err, request, reply) => {
    const { status, body: errorBody, retryAfter } = toApiError(err);
    if (status >= 500) request.log.error({ err }, 'request failed');
    else request.log.debug({ err: { message: (err as Error).message }, status }, 'request refused');
    if (retryAfter !== undefined) reply.header('retry-after', String(retryAfter));
    return reply.code(status).send(errorBody);
  });
  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send({
      error: { code: 'not_found', message: `no route ${request.method} ${request.url.split('?')[0]}` },
    }),
  );
};

import { NDJSON_MEDIA_TYPE, type RouteShape, responseSchemas } from '@chat/events';

/**
 * The fastify schema of a route shape from @chat/events: request validation, response serialization
 * and the route's OpenAPI entry (operationId, summary, every status it can answer) come from one place.
 */
export const routeSchema = <S extends RouteShape>(shape: S) => {
  const response = responseSchemas(shape);
  if (shape.ndjsonLine) {
    // Both media types of the success answer, so the OpenAPI document names the NDJSON stream too.
    const status = Number(Object.keys(shape.responses)[0]);
    const json = response[status];
    (response as Record<number, unknown>)[status] = {
      description: json?.description ?? 'success',
      content: {
        'application/json': { schema: json },
        [NDJSON_MEDIA_TYPE]: { schema: shape.ndjsonLine },
      },
    };
  }
  const schema = {
    operationId: shape.name,
    summary: shape.summary,
    tags: [...shape.tags],
    params: shape.params as S['params'],
    response,
  };
  // Only the parts a route has: fastify warns about a schema key that is present but undefined.
  return {
    ...schema,
    ...(shape.querystring ? { querystring: shape.querystring } : {}),
    ...(shape.body && shape.method !== 'GET' ? { body: shape.body } : {}),
    ...(shape.body && shape.method !== 'GET' && shape.body.safeParse(undefined).success
      ? { [OPTIONAL_BODY]: true }
      : {}),
  } as typeof schema & { querystring: S['querystring']; body: S['body'] };
};

/**
 * Marks a route whose body may be left out (typing, deletes): @fastify/swagger copies `x-` keys of a
 * route schema into its operation, and `optionalBodies` below turns the mark into
 * `requestBody.required: false` (the plugin writes `true` for every body schema).
 */
const OPTIONAL_BODY = 'x-optional-body';

type OpenApiDocument = { paths?: Record<string, Record<string, Record<string, unknown>>> };

/** `transformObject` of @fastify/swagger: `requestBody.required: false` where a route takes no body. */
export const optionalBodies = <D extends object>(openapiObject: D): D => {
  for (const operations of Object.values((openapiObject as OpenApiDocument).paths ?? {}))
    for (const operation of Object.values(operations)) {
      if (!operation[OPTIONAL_BODY]) continue;
      delete operation[OPTIONAL_BODY];
      const body = operation.requestBody as { required?: boolean } | undefined;
      if (body) body.required = false;
    }
  return openapiObject;
};

/** Method, URL and schema of a route shape, to spread into `app.route({...})` beside its handler. */
export const routeOf = <S extends RouteShape>(shape: S) => ({
  method: shape.method,
  url: shape.path,
  schema: routeSchema(shape),
});

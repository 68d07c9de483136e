import { type RouteShape, responseSchemas } from '@chat/events';

/**
 * The fastify schema of a route shape from @chat/events: request validation, response serialization
 * and the route's OpenAPI entry (operationId, summary, every status it can answer) come from one place.
 */
export const routeSchema = <S extends RouteShape>(shape: S) => {
  const schema = {
    operationId: shape.name,
    summary: shape.summary,
    tags: [...shape.tags],
    params: shape.params as S['params'],
    response: responseSchemas(shape),
  };
  // Only the parts a route has: fastify warns about a schema key that is present but undefined.
  return {
    ...schema,
    ...(shape.querystring ? { querystring: shape.querystring } : {}),
    ...(shape.body && shape.method !== 'GET' ? { body: shape.body } : {}),
  } as typeof schema & { querystring: S['querystring']; body: S['body'] };
};

/** Method, URL and schema of a route shape, to spread into `app.route({...})` beside its handler. */
export const routeOf = <S extends RouteShape>(shape: S) => ({
  method: shape.method,
  url: shape.path,
  schema: routeSchema(shape),
});

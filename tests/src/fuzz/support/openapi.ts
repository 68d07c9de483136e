import type { Schema } from './arbitraries.js';

/** One operation of the command-api's OpenAPI document, as the fuzzer drives it. */
export type Operation = {
  operationId: string;
  method: string;
  /** OpenAPI path syntax: `/v1/conversations/{conversationId}`. */
  path: string;
  pathParams: { name: string; schema?: Schema }[];
  queryParams: { name: string; schema?: Schema }[];
  body: Schema | undefined;
  /** Statuses the document says the operation answers. */
  statuses: number[];
};

type Parameter = { in: string; name: string; schema?: Schema };
type OpenApiOperation = {
  operationId?: string;
  parameters?: Parameter[];
  requestBody?: { content?: Record<string, { schema?: Schema }> };
  responses?: Record<string, unknown>;
};

/**
 * Every operation of `GET /docs/json`. The fuzzer is driven from here, so a route added to the API is
 * fuzzed without a change to the suite.
 */
export const readOperations = async (apiUrl: string): Promise<Operation[]> => {
  const res = await fetch(`${apiUrl}/docs/json`);
  if (!res.ok) throw new Error(`GET /docs/json → ${res.status}`);
  const doc = (await res.json()) as { paths: Record<string, Record<string, OpenApiOperation>> };
  const operations: Operation[] = [];
  for (const [path, methods] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      const params = op.parameters ?? [];
      operations.push({
        operationId: op.operationId ?? `${method} ${path}`,
        method: method.toUpperCase(),
        path,
        pathParams: params.filter((p) => p.in === 'path'),
        queryParams: params.filter((p) => p.in === 'query'),
        body: op.requestBody?.content?.['application/json']?.schema,
        statuses: Object.keys(op.responses ?? {}).map(Number),
      });
    }
  }
  return operations;
};

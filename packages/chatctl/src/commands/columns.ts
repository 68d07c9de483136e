import { eventDataSchemas, instantSchema, isEventType, uuidOutputSchema } from '@chat/events';
import type { RecordedEvent } from '@chat/eventstore';
import type { z } from 'zod';

/** How a value is typed in the Parquet files (DuckDB type names). */
export type ColumnType = 'VARCHAR' | 'UUID' | 'TIMESTAMPTZ' | 'BIGINT' | 'BOOLEAN' | 'VARCHAR[]';

export type Column = { name: string; type: ColumnType; value: (e: RecordedEvent) => unknown };

/** The envelope's fields (API.md §3), flattened: the first columns of every file. */
const ENVELOPE: Column[] = [
  { name: 'id', type: 'UUID', value: (e) => e.id },
  { name: 'type', type: 'VARCHAR', value: (e) => e.type },
  { name: 'streamId', type: 'VARCHAR', value: (e) => e.streamId },
  { name: 'revision', type: 'BIGINT', value: (e) => e.revision },
  { name: 'position', type: 'VARCHAR', value: (e) => e.position },
  { name: 'occurredAt', type: 'TIMESTAMPTZ', value: (e) => e.occurredAt },
  // `metadataUserId`: several events carry a `userId` of their own in `data`.
  { name: 'metadataUserId', type: 'VARCHAR', value: (e) => e.metadata.userId },
  { name: 'correlationId', type: 'VARCHAR', value: (e) => e.metadata.correlationId },
  { name: 'causationId', type: 'VARCHAR', value: (e) => e.metadata.causationId },
  { name: 'schemaVersion', type: 'BIGINT', value: (e) => e.metadata.schemaVersion },
];

type Def = { type: string; innerType?: z.ZodType; element?: z.ZodType; values?: unknown[] };
const defOf = (schema: z.ZodType): Def => (schema as unknown as { _zod: { def: Def } })._zod.def;

/** The column type of one field of an event's data schema (zod, packages/events). */
const columnTypeOf = (schema: z.ZodType): ColumnType => {
  let s = schema;
  for (let def = defOf(s); def.type === 'nullable' || def.type === 'optional'; def = defOf(s)) {
    s = def.innerType as z.ZodType;
  }
  if (s === uuidOutputSchema) return 'UUID';
  if (s === instantSchema) return 'TIMESTAMPTZ';
  const def = defOf(s);
  if (def.type === 'number') return 'BIGINT';
  // `erased` (README "Erasure"): `true` on an event whose author was erased, absent otherwise.
  if (def.type === 'boolean' || (def.type === 'literal' && def.values?.every((v) => typeof v === 'boolean')))
    return 'BOOLEAN';
  if (def.type === 'array') return 'VARCHAR[]';
  return 'VARCHAR';
};

/**
 * The columns of one event type's file: the envelope, then every field of its data schema under its
 * own name, then `dataExtra` — the data fields the schema does not name, as JSON (null when none), so
 * nothing a newer writer added is lost. A type this build does not know keeps its data as JSON.
 */
export const columnsOf = (type: string): Column[] => {
  if (!isEventType(type)) {
    return [...ENVELOPE, { name: 'data', type: 'VARCHAR', value: (e) => JSON.stringify(e.data) }];
  }
  const shape = (eventDataSchemas[type] as unknown as z.ZodObject).shape as Record<string, z.ZodType>;
  const known = new Set(Object.keys(shape));
  const fields: Column[] = Object.entries(shape).map(([name, schema]) => ({
    name,
    type: columnTypeOf(schema),
    value: (e) => e.data[name],
  }));
  const extra: Column = {
    name: 'dataExtra',
    type: 'VARCHAR',
    value: (e) => {
      const rest = Object.entries(e.data).filter(([k]) => !known.has(k));
      return rest.length > 0 ? JSON.stringify(Object.fromEntries(rest)) : null;
    },
  };
  return [...ENVELOPE, ...fields, extra];
};

/** A file name for an event type: its name where it is a plain identifier (every known type is). */
export const fileStem = (type: string): string => type.replace(/[^A-Za-z0-9_-]/g, '_');

import pg from 'pg';

// Where every consumer of the log stands: the position in each `checkpoints` table of the database
// (projector, notifier, relay — and whatever a later consumer adds), read over the run's own direct
// connection. Shadow schemas of a rebuild and the run's own copies are left out.

const SKIPPED_SCHEMAS = /^(read_models_|chaos_)/;

/** `<schema>.<name>` → position. */
export const readCheckpoints = async (client: pg.Pool | pg.PoolClient): Promise<Record<string, string>> => {
  const { rows: schemas } = await client.query<{ schema: string }>(
    `SELECT table_schema AS schema FROM information_schema.columns
      WHERE table_name = 'checkpoints' AND column_name IN ('name', 'position')
      GROUP BY table_schema HAVING count(*) = 2`,
  );
  const wanted = schemas.map((s) => s.schema).filter((s) => !SKIPPED_SCHEMAS.test(s));
  if (wanted.length === 0) return {};
  const { rows } = await client.query<{ schema: string; name: string; position: string }>(
    wanted
      .map(
        (s) =>
          `SELECT ${pg.escapeLiteral(s)} AS schema, name, position FROM ${pg.escapeIdentifier(s)}.checkpoints`,
      )
      .join(' UNION ALL '),
  );
  return Object.fromEntries(rows.map((r) => [`${r.schema}.${r.name}`, r.position]));
};

import { createTestDatabase, type TestDatabase } from '@chat/testkit';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyInto, copyText, copyValue } from '../src/copy.js';

type Row = {
  id: number;
  body: string | null;
  flag: boolean;
  at: string | null;
  names: string[];
};

const COLUMNS = ['id', 'body', 'flag', 'at', 'names'] as const;

// Every character COPY's text format gives a meaning to, and what looks like its escapes.
const TRICKY = [
  'tab\there',
  'two\nlines',
  'carriage\rreturn',
  'back\\slash',
  '\\N',
  '\\.',
  'ends with a backslash \\',
  '"quoted" and \'single\'',
  '{braces},commas',
  'ça va 🎉 漢字',
  '',
  ' ',
  'NULL',
];

let database: TestDatabase;
let pool: pg.Pool;

beforeAll(async () => {
  database = await createTestDatabase('copy');
  pool = new pg.Pool({ connectionString: database.url, max: 2 });
  await pool.query(
    'CREATE TABLE copied (id int PRIMARY KEY, body text, flag boolean NOT NULL, at timestamptz, names text[] NOT NULL)',
  );
});
afterAll(async () => {
  await pool?.end();
  await database?.drop();
});

describe('COPY text (a replay writes its new messages with it)', () => {
  it('stores every value exactly as given: escapes, nulls, arrays, empty text', async () => {
    const rows: Row[] = TRICKY.map((body, i) => ({
      id: i,
      body,
      flag: i % 2 === 0,
      at: new Date(Date.UTC(2026, 10, 27, 12, 0, i, 123)).toISOString(),
      names: [body, `u${i}`, 'a"b', 'c\\d', 'e,f', '{g}', 'NULL'],
    }));
    rows.push({ id: 100, body: null, flag: false, at: null, names: [] });
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      await copyInto(client, 'public', 'copied', COLUMNS, copyText(rows, COLUMNS));
      await client.query('COMMIT');
    } finally {
      client.release();
    }
    const { rows: stored } = await pool.query<{
      id: number;
      body: string | null;
      flag: boolean;
      at: Date | null;
      names: string[];
    }>('SELECT id, body, flag, at, names FROM copied ORDER BY id');
    expect(stored.map((r) => ({ ...r, at: r.at?.toISOString() ?? null }))).toEqual(rows);
  });

  it('rejects when Postgres refuses the rows, and leaves the connection usable', async () => {
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      const row: Row = { id: 0, body: 'again', flag: true, at: null, names: [] };
      await expect(copyInto(client, 'public', 'copied', COLUMNS, copyText([row], COLUMNS))).rejects.toThrow(
        /duplicate key/,
      );
      await client.query('ROLLBACK');
      expect((await client.query('SELECT count(*)::int AS n FROM copied')).rows).toEqual([
        { n: TRICKY.length + 1 },
      ]);
    } finally {
      client.release();
    }
  });

  it('copies nothing for no rows, and refuses values it cannot represent', async () => {
    expect(copyText([], COLUMNS)).toBe('');
    await copyInto(pool as unknown as pg.ClientBase, 'public', 'no_such_table', COLUMNS, '');
    expect(() => copyValue(Number.NaN)).toThrow(RangeError);
    expect(() => copyValue({ a: 1 })).toThrow(TypeError);
    expect(() => copyValue([1])).toThrow(TypeError);
  });
});

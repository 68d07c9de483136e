import fc from 'fast-check';
import { clone, type Json, Known, type KnownKind, Obj, Raw, slots } from './json.js';

// Generators of hostile input: text with every Unicode edge, numbers no JavaScript number can hold,
// keys that mean something to JavaScript objects, and values shaped by a JSON Schema (the OpenAPI
// document's, or a WS frame's) so that some of them pass validation and reach the handlers.

const UUID = '0f8fad5b-d9cb-469f-a165-70867728950e';

/** Text that sits on an edge of Unicode, JSON, Postgres or the contract's limits. */
export const EDGE_STRINGS: readonly string[] = [
  '',
  ' ',
  '\t\n\r',
  '\u0000',
  'a\u0000b',
  '\ud800',
  '\udfff',
  'a\ud800b',
  'x\udc00',
  '\udbff\udfff',
  '\ud83d',
  '\ufeff',
  '\ufeffhello',
  '\u200f\u202eevil\u202c',
  '\u200b',
  '\u2028\u2029',
  'e\u0301\u0301\u0301\u0301\u0301',
  '👍',
  '👨‍👩‍👧‍👦',
  '🏳️‍🌈',
  '\uffff',
  '\ufffe',
  '\ufffd',
  '\u00c0\u00af',
  '\u00ed\u00a0\u0080',
  '%00',
  '%C0%AF',
  '\\u0000',
  '\\ud800',
  '"',
  '\\',
  "'; DROP TABLE es.events; --",
  '<script>alert(1)</script>',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a template injection probe, as text
  '${7*7}',
  '__proto__',
  'constructor',
  'prototype',
  '@mallory',
  '@victim-a @victim-b @victim-c',
  'null',
  'undefined',
  'NaN',
  'true',
  '0',
  '-0',
  '1e400',
  '2147483648',
  '9007199254740993',
  UUID,
  UUID.toUpperCase(),
  `${UUID}\u0000`,
  '0000-01-01T00:00:00Z',
  '9999-12-31T23:59:59.999Z',
  '9999-12-31T23:59:59.999-01:00',
  '10000-01-01T00:00:00.000Z',
  '1969-12-31T23:59:59.999Z',
  '2026-02-30T00:00:00.000Z',
  '2026-01-01T24:00:00.000Z',
  '1970-01-01T00:00:00.000+14:00',
  'a'.repeat(64),
  'a'.repeat(65),
  'a'.repeat(200),
  'a'.repeat(201),
  'x'.repeat(4000),
  'x'.repeat(4001),
  '😀'.repeat(4000),
  '😀'.repeat(4001),
  `${' '.repeat(100)}x${' '.repeat(100)}`,
  'e\u0301'.repeat(2001),
  '\u00a0\u3000\u2003',
];

/** Any UTF-16 code unit, lone surrogates included. */
const codeUnit = fc.integer({ min: 0, max: 0xffff }).map((u) => String.fromCharCode(u));
const astral = fc.integer({ min: 0x10000, max: 0x10ffff }).map((cp) => String.fromCodePoint(cp));

/** Text that Postgres cannot store (U+0000, an unpaired surrogate) somewhere in ordinary text. */
export const unstorableString: fc.Arbitrary<string> = fc
  .tuple(
    fc.string({ unit: 'grapheme', maxLength: 20 }),
    fc.constantFrom('\u0000', '\ud800', '\udbff', '\udc00', '\udfff', '\ud83d\ud83d'),
    fc.string({ unit: 'grapheme', maxLength: 20 }),
  )
  .map(([a, b, c]) => a + b + c);

export const nastyString: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...EDGE_STRINGS) },
  { weight: 3, arbitrary: unstorableString },
  { weight: 2, arbitrary: fc.string({ unit: fc.oneof(codeUnit, astral), maxLength: 40 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 40 }) },
  {
    weight: 2,
    arbitrary: fc
      .tuple(fc.string({ maxLength: 8 }), fc.constantFrom(...EDGE_STRINGS), fc.string({ maxLength: 8 }))
      .map(([a, b, c]) => a + b + c),
  },
);

/** Number tokens: the ones JSON can carry and a few it cannot. */
export const nastyNumber: fc.Arbitrary<Json> = fc.oneof(
  fc.constantFrom<Json>(
    0,
    -1,
    1,
    0.5,
    -0.5,
    2 ** 31 - 1,
    2 ** 31,
    -(2 ** 31) - 1,
    2 ** 53,
    Number.MAX_SAFE_INTEGER,
    Number.MAX_VALUE,
    Number.MIN_VALUE,
    new Raw('-0'),
    new Raw('1e400'),
    new Raw('-1e400'),
    new Raw('1e-400'),
    new Raw('9007199254740993'),
    new Raw('123456789012345678901234567890'),
    new Raw('1.0'),
    new Raw('1E2'),
  ),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
);

/** Tokens that are not JSON at all, placed where a value should be. */
const invalidToken = fc.constantFrom(
  new Raw('NaN'),
  new Raw('Infinity'),
  new Raw('undefined'),
  new Raw("'x'"),
  new Raw('0x10'),
  new Raw('01'),
  new Raw('+1'),
  new Raw('.5'),
  new Raw('"\\ud800"'),
  new Raw('"\\u0000"'),
  new Raw('"\\x41"'),
  new Raw('"unterminated'),
  new Raw('{'),
  new Raw('tru'),
);

/** Keys that mean something to JavaScript objects, to parsers or to the contract. */
export const nastyKey: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(
    '__proto__',
    'constructor',
    'prototype',
    'toString',
    'hasOwnProperty',
    'type',
    'ref',
    'userId',
    'roles',
    '',
    '\u0000',
    '\ud800',
    'a'.repeat(100),
  ),
  fc.string({ maxLength: 10 }),
);

const leaf: fc.Arbitrary<Json> = fc.oneof(fc.constant(null), fc.boolean(), nastyNumber, nastyString);

/** Arbitrary JSON with hostile leaves and keys (depth-bounded; deep nesting is its own case). */
export const nastyJson: fc.Arbitrary<Json> = fc.letrec<{ value: Json }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    { weight: 4, arbitrary: leaf },
    { weight: 1, arbitrary: fc.array(tie('value'), { maxLength: 4 }) },
    {
      weight: 1,
      arbitrary: fc.array(fc.tuple(nastyKey, tie('value')), { maxLength: 4 }).map((pairs) => new Obj(pairs)),
    },
  ),
})).value;

/** Whole documents that stress a parser: nesting, size, repetition. */
export const stressText: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(1000, 10_000, 30_000).map((n) => `${'['.repeat(n)}${']'.repeat(n)}`),
  fc.constantFrom(1000, 6_000).map((n) => `${'{"a":'.repeat(n)}1${'}'.repeat(n)}`),
  fc.constant(`{${Array.from({ length: 5000 }, (_, i) => `"k${i}":${i}`).join(',')}}`),
  fc.constant(`[${Array.from({ length: 20_000 }, () => '0').join(',')}]`),
  fc.constant(`{${Array.from({ length: 2000 }, () => '"__proto__":{"admin":true}').join(',')}}`),
  fc.constant(JSON.stringify({ body: 'x'.repeat(64 * 1024) })),
  fc.constant(JSON.stringify({ body: 'x'.repeat(64 * 1024 - 12) })),
  fc.constant('\ufeff{}'),
  fc.constant('{}\u0000'),
  fc.constant('{} {}'),
  fc.constant(''),
  fc.constant(' '),
  fc.constant('null'),
  fc.constant('"string"'),
  fc.constant('[]'),
);

// ---- values shaped by a JSON Schema ----

/** The parts of JSON Schema (draft 2020-12 and OpenAPI 3's dialect) our documents use. */
export type Schema = {
  type?: string | string[];
  const?: unknown;
  enum?: unknown[];
  properties?: Record<string, Schema>;
  required?: string[];
  additionalProperties?: boolean | Schema;
  propertyNames?: Schema;
  items?: Schema;
  minItems?: number;
  maxItems?: number;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  pattern?: string;
  format?: string;
  nullable?: boolean;
  anyOf?: Schema[];
  oneOf?: Schema[];
};

const UUID_PATTERN = '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$';
const USER_ID_PATTERN = '^[A-Za-z0-9_.:@-]{1,64}$';
const DECIMAL_PATTERN = '^[0-9]{1,16}$';

const known = (kind: KnownKind) => fc.nat({ max: 1000 }).map((i) => new Known(kind, i));

const uuidValue: fc.Arbitrary<Json> = fc.oneof(
  { weight: 5, arbitrary: known('memberConversation') },
  { weight: 1, arbitrary: known('foreignConversation') },
  { weight: 4, arbitrary: known('message') },
  { weight: 2, arbitrary: known('ownMessage') },
  { weight: 1, arbitrary: known('notification') },
  { weight: 2, arbitrary: fc.uuid({ version: [1, 4, 5, 7] }) },
  { weight: 1, arbitrary: fc.uuid().map((u) => u.toUpperCase()) },
);

const decimalValue: fc.Arbitrary<Json> = fc.oneof(
  fc.constantFrom('0', '1', '50', '100', '101', '200', '1000', '1001', '2147483647', '2147483648'),
  fc.constantFrom('9999999999999999', '00000000000001', '4294967296'),
  known('seq').map((k) => k),
  fc.nat({ max: 300 }).map(String),
);

const timeValue: fc.Arbitrary<Json> = fc.oneof(
  fc.constantFrom(
    '1970-01-01T00:00:00.000Z',
    '1970-01-01T00:00:00Z',
    '1969-12-31T23:59:59.999Z',
    '9999-12-31T23:59:59.999Z',
    '9999-12-31T23:59:59.999-00:01',
    '0000-01-01T00:00:00Z',
    '2000-02-29T12:00:00.123456789+05:30',
    '2100-02-29T00:00:00Z',
    '2030-01-01T00:00:00.000Z',
  ),
  fc.date({ min: new Date(-1e14), max: new Date(3e14), noInvalidDate: true }).map((d) => d.toISOString()),
);

const freeText = (schema: Schema): fc.Arbitrary<Json> => {
  const max = schema.maxLength;
  return fc.oneof(
    { weight: 3, arbitrary: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 30 }) },
    { weight: 3, arbitrary: nastyString },
    { weight: 1, arbitrary: known('cursor') },
    { weight: 1, arbitrary: known('user').map((u) => u) },
    ...(max === undefined
      ? []
      : [{ weight: 1, arbitrary: fc.constantFrom('y'.repeat(max), 'y'.repeat(max + 1), '😀'.repeat(max)) }]),
  );
};

/**
 * UUIDs by what the field names (`path:` for path parameters): most cases name the right kind of
 * thing, so handlers get past 404; a new message's id is mostly fresh, an edited one mostly known.
 */
const uuidFor = (name: string | undefined): fc.Arbitrary<Json> => {
  switch (name) {
    case 'conversationId':
    case 'path:conversationId':
      return fc.oneof(
        { weight: 6, arbitrary: known('memberConversation') },
        { weight: 1, arbitrary: known('foreignConversation') },
        { weight: 1, arbitrary: uuidValue },
      );
    case 'messageId':
      return fc.oneof(
        { weight: 4, arbitrary: fc.uuid({ version: [4, 7] }) },
        { weight: 1, arbitrary: known('ownMessage') },
        { weight: 1, arbitrary: known('message') },
      );
    case 'path:messageId':
    case 'replyTo':
      return fc.oneof(
        { weight: 3, arbitrary: known('ownMessage') },
        { weight: 3, arbitrary: known('message') },
        { weight: 1, arbitrary: uuidValue },
      );
    case 'notificationIds':
      return fc.oneof({ weight: 3, arbitrary: known('notification') }, { weight: 1, arbitrary: uuidValue });
    default:
      return uuidValue;
  }
};

const stringValue = (schema: Schema, name: string | undefined): fc.Arbitrary<Json> => {
  if (schema.format === 'date-time') return timeValue;
  switch (schema.pattern) {
    case undefined:
      return freeText(schema);
    case UUID_PATTERN:
      return uuidFor(name);
    case USER_ID_PATTERN:
      return fc.oneof(
        { weight: 4, arbitrary: known('user') },
        { weight: 1, arbitrary: fc.stringMatching(/^[A-Za-z0-9_.:@-]{1,64}$/) },
      );
    case DECIMAL_PATTERN:
      return decimalValue;
    default:
      // Mostly positions the server handed out: an unknown one makes the query wait its 2 s.
      if (/position|\[0-9a-f\]\{32\}/.test(schema.pattern))
        return fc.oneof(
          { weight: 6, arbitrary: known('position') },
          { weight: 1, arbitrary: fc.stringMatching(new RegExp(schema.pattern)) },
        );
      return fc.stringMatching(new RegExp(schema.pattern));
  }
};

const integerValue = (schema: Schema): fc.Arbitrary<Json> => {
  const min = schema.minimum ?? -(2 ** 31);
  const max = schema.maximum ?? 2 ** 31;
  return fc.oneof(
    { weight: 3, arbitrary: known('seq') },
    { weight: 2, arbitrary: fc.integer({ min: Math.max(min, -5), max: Math.min(max, 300) }) },
    { weight: 1, arbitrary: fc.constantFrom(min, max, min - 1, max + 1) },
  );
};

/**
 * A value that matches `schema` (or nearly: free strings carry hostile text). `name` is the field or
 * parameter it is for, so that ids name things of the right kind.
 */
export const schemaValue = (schema: Schema | undefined, depth = 0, name?: string): fc.Arbitrary<Json> => {
  if (!schema || depth > 6) return nastyJson;
  const choices = schema.oneOf ?? schema.anyOf;
  if (choices) return fc.oneof(...choices.map((s) => schemaValue(s, depth + 1, name)));
  if (schema.const !== undefined) return fc.constant(schema.const as Json);
  if (schema.enum) return fc.constantFrom(...(schema.enum as Json[]));
  const types = Array.isArray(schema.type) ? schema.type : [schema.type ?? 'any'];
  const value = fc.oneof(
    ...types.map((type): fc.Arbitrary<Json> => {
      switch (type) {
        case 'string':
          return stringValue(schema, name);
        case 'integer':
          return integerValue(schema);
        case 'number':
          return nastyNumber;
        case 'boolean':
          return fc.boolean();
        case 'null':
          return fc.constant(null);
        case 'array':
          return fc.array(schemaValue(schema.items, depth + 1, name), {
            minLength: Math.min(schema.minItems ?? 0, 3),
            maxLength: Math.min(schema.maxItems ?? 5, 5),
          });
        case 'object':
          return objectValue(schema, depth);
        default:
          return nastyJson;
      }
    }),
  );
  return schema.nullable
    ? fc.oneof({ weight: 4, arbitrary: value }, { weight: 1, arbitrary: fc.constant(null) })
    : value;
};

const objectValue = (schema: Schema, depth: number): fc.Arbitrary<Json> => {
  const properties = Object.entries(schema.properties ?? {});
  const required = new Set(schema.required ?? []);
  const fields = properties.map(([key, s]) =>
    fc
      .record({
        present: required.has(key) ? fc.constant(true) : fc.boolean(),
        value: schemaValue(s, depth + 1, key),
      })
      .map(({ present, value }) => (present ? ([key, value] as [string, Json]) : undefined)),
  );
  const extra =
    typeof schema.additionalProperties === 'object'
      ? fc.array(
          fc.tuple(
            schema.propertyNames
              ? fc.oneof(known('memberConversation'), known('foreignConversation'), nastyKey)
              : nastyKey,
            schemaValue(schema.additionalProperties, depth + 1),
          ),
          { maxLength: 4 },
        )
      : fc.constant([]);
  return fc
    .tuple(fc.tuple(...fields), extra)
    .map(([fs, more]) => new Obj([...fs.filter((f): f is [string, Json] => f !== undefined), ...more]));
};

// ---- mutations of a schema-shaped value ----

export type Mutation =
  | { kind: 'replace'; at: number; value: Json }
  | { kind: 'dropKey'; at: number }
  | { kind: 'addKey'; at: number; key: string; value: Json }
  | { kind: 'duplicateKey'; at: number; value: Json }
  | { kind: 'wrapArray'; at: number }
  | { kind: 'invalidToken'; at: number; token: Raw }
  | { kind: 'edgeText'; at: number; text: string };

export const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({ kind: fc.constant('replace' as const), at: fc.nat(), value: nastyJson }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('dropKey' as const), at: fc.nat() }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('addKey' as const),
      at: fc.nat(),
      key: nastyKey,
      value: nastyJson,
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('duplicateKey' as const), at: fc.nat(), value: nastyJson }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('wrapArray' as const), at: fc.nat() }) },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('invalidToken' as const), at: fc.nat(), token: invalidToken }),
  },
);

/** `value` with `mutations` applied, on a copy. */
export const mutate = (value: Json, mutations: readonly Mutation[]): Json => {
  const root = { value: clone(value) };
  for (const m of mutations) {
    const all = slots(root);
    const objects = all.map((s) => s.get()).filter((v): v is Obj => v instanceof Obj);
    const pick = <T>(list: T[]) => list[m.at % Math.max(list.length, 1)];
    switch (m.kind) {
      case 'replace':
        pick(all)?.set(clone(m.value));
        break;
      case 'invalidToken':
        pick(all)?.set(m.token);
        break;
      case 'edgeText':
        pick(all.filter((slot) => typeof slot.get() === 'string' || slot.get() instanceof Known))?.set(
          m.text,
        );
        break;
      case 'wrapArray': {
        const slot = pick(all);
        slot?.set([slot.get()]);
        break;
      }
      case 'dropKey': {
        const obj = pick(objects);
        if (obj && obj.pairs.length > 0) obj.pairs.splice(m.at % obj.pairs.length, 1);
        break;
      }
      case 'addKey':
        pick(objects)?.pairs.push([m.key, clone(m.value)]);
        break;
      case 'duplicateKey': {
        const obj = pick(objects);
        const pair = obj?.pairs[m.at % Math.max(obj.pairs.length, 1)];
        if (obj && pair) obj.pairs.push([pair[0], clone(m.value)]);
        break;
      }
      default: {
        const never: never = m;
        throw new Error(`unknown mutation ${JSON.stringify(never)}`);
      }
    }
  }
  return root.value;
};

/**
 * A schema-shaped document: as the schema says, or with one text field replaced by edge text (the
 * case that reaches storage when validation misses it), or mutated, or anything at all.
 */
export const documentFor = (schema: Schema | undefined): fc.Arbitrary<Json> =>
  fc.oneof(
    { weight: 3, arbitrary: schemaValue(schema) },
    {
      weight: 3,
      arbitrary: fc
        .tuple(schemaValue(schema), fc.nat(), nastyString)
        .map(([v, at, text]) => mutate(v, [{ kind: 'edgeText', at, text }])),
    },
    {
      weight: 4,
      arbitrary: fc
        .tuple(schemaValue(schema), fc.array(mutation, { minLength: 1, maxLength: 3 }))
        .map(([v, ms]) => mutate(v, ms)),
    },
    { weight: 1, arbitrary: nastyJson },
  );

// ---- URLs ----

const hex = (n: number) => `%${n.toString(16).toUpperCase().padStart(2, '0')}`;

/**
 * Percent-encodes every UTF-16 code unit of `s` as UTF-8 bytes; a lone surrogate becomes its three
 * generalized-UTF-8 bytes (`%ED%A0%80`), which no valid UTF-8 decoder accepts.
 */
export const percentEncode = (s: string): string => {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const unit = s.charCodeAt(i);
    const next = s.charCodeAt(i + 1);
    let cp = unit;
    if (unit >= 0xd800 && unit <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
      cp = 0x10000 + ((unit - 0xd800) << 10) + (next - 0xdc00);
      i++;
    }
    if (/[A-Za-z0-9_.~-]/.test(String.fromCharCode(cp)) && cp < 0x80) out += String.fromCharCode(cp);
    else if (cp < 0x80) out += hex(cp);
    else if (cp < 0x800) out += hex(0xc0 | (cp >> 6)) + hex(0x80 | (cp & 63));
    else if (cp < 0x10000)
      out += hex(0xe0 | (cp >> 12)) + hex(0x80 | ((cp >> 6) & 63)) + hex(0x80 | (cp & 63));
    else
      out +=
        hex(0xf0 | (cp >> 18)) +
        hex(0x80 | ((cp >> 12) & 63)) +
        hex(0x80 | ((cp >> 6) & 63)) +
        hex(0x80 | (cp & 63));
  }
  return out;
};

/** Raw path or query fragments that are malformed or ambiguous as percent-encoding. */
export const RAW_URL_FRAGMENTS: readonly string[] = [
  '%',
  '%0',
  '%ZZ',
  '%zz',
  '%00',
  '%C0%AF',
  '%C0%80',
  '%ED%A0%80',
  '%ED%BF%BF',
  '%F4%90%80%80',
  '%FF%FE',
  '%EF%BB%BF',
  '%F0%9F%91%8D',
  '%2F',
  '%2f..%2f..',
  '..',
  '.',
  '%2e%2e',
  '',
  'a%20b',
  '%25',
  '%252F',
  ';x=1',
  '%3B',
  '%3F',
  '%23',
  '+',
  'x'.repeat(3000),
  `${UUID.replace(/-/g, '%2D')}`,
  `%EF%BB%BF${UUID}`,
  `${UUID}%00`,
  `${UUID}%20`,
];

/** A path parameter: mostly a value its schema allows (percent-encoded), else raw malformed encoding. */
export const pathValue = (
  schema: Schema | undefined,
  name: string,
): fc.Arbitrary<{ value: Json; raw: boolean }> =>
  fc.oneof(
    { weight: 8, arbitrary: schemaValue(schema, 0, `path:${name}`).map((value) => ({ value, raw: false })) },
    { weight: 1, arbitrary: nastyString.map((value) => ({ value: value as Json, raw: false })) },
    {
      weight: 2,
      arbitrary: fc.constantFrom(...RAW_URL_FRAGMENTS).map((value) => ({ value: value as Json, raw: true })),
    },
  );

export type QueryPart = { key: string; value: Json; raw: boolean };

/** A query string of `params`: documented keys with allowed or hostile values, repeats, strangers. */
export const queryFor = (params: { name: string; schema?: Schema }[]): fc.Arbitrary<QueryPart[]> => {
  const documented = params.map((p) => {
    const allowed = schemaValue(p.schema, 0, p.name).map(
      (value): QueryPart => ({ key: p.name, value, raw: false }),
    );
    const hostile = fc.oneof(
      nastyString.map((value): QueryPart => ({ key: p.name, value, raw: false })),
      fc.constantFrom(...RAW_URL_FRAGMENTS).map((value): QueryPart => ({ key: p.name, value, raw: true })),
    );
    return fc.oneof(
      { weight: 3, arbitrary: fc.constant<QueryPart[]>([]) },
      { weight: 3, arbitrary: allowed.map((part) => [part]) },
      { weight: 1, arbitrary: hostile.map((part) => [part]) },
      // A repeated key: fastify reads it as an array.
      { weight: 1, arbitrary: fc.array(fc.oneof(allowed, hostile), { minLength: 2, maxLength: 3 }) },
    );
  });
  const strangers = fc.array(
    fc.record({
      key: fc.oneof(nastyKey, fc.constantFrom('limit[]', 'a[b]', 'limit.x', 'access_token')),
      value: nastyString.map((v) => v as Json),
      raw: fc.constant(false),
    }),
    { maxLength: 1 },
  );
  return fc
    .tuple(
      fc.tuple(...documented),
      fc.oneof({ weight: 5, arbitrary: fc.constant([]) }, { weight: 1, arbitrary: strangers }),
    )
    .map(([docs, more]) => [...docs.flat(), ...more]);
};

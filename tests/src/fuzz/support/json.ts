// A JSON document as the fuzzer builds it: objects are lists of key/value pairs (so a key may repeat and
// `__proto__` is an ordinary key), and `Raw` is a token written as is (`1e400`, `-0`, `NaN`, a cut-off
// string), which no JavaScript value serialises to.

export class Raw {
  /** `make` runs when the text is written (a token's `exp` relative to the moment it is sent). */
  constructor(private readonly make: string | (() => string)) {}
  get text(): string {
    return typeof this.make === 'string' ? this.make : this.make();
  }
  toString(): string {
    return `Raw(${this.text})`;
  }
}

export class Obj {
  constructor(readonly pairs: [string | Known, Json][]) {}
}

/** A value the system handed out (a conversation the fuzzer is in, a message id, a cursor…), looked up
 * when the case runs, so generated cases reach past "unknown id" into the handlers' own logic. */
export class Known {
  constructor(
    readonly kind: KnownKind,
    readonly index: number,
  ) {}
  toString(): string {
    return `Known(${this.kind}#${this.index})`;
  }
}

export type KnownKind =
  | 'memberConversation'
  | 'foreignConversation'
  | 'message'
  | 'ownMessage'
  | 'notification'
  | 'user'
  | 'position'
  | 'cursor'
  | 'seq'
  | 'stream';

export type Resolve = (known: Known) => string | number;

export type Json = null | boolean | number | string | Raw | Obj | Known | Json[];

/**
 * JSON text of `value`. Strings go through `JSON.stringify`, which writes a lone surrogate as a
 * `\udXXX` escape: the server then reads the lone surrogate itself, as a hostile client could send it.
 */
export const toJsonText = (value: Json, resolve: Resolve): string => {
  if (value instanceof Raw) return value.text;
  if (value instanceof Known) return JSON.stringify(resolve(value));
  if (value instanceof Obj)
    return `{${value.pairs
      .map(
        ([k, v]) =>
          `${JSON.stringify(k instanceof Known ? String(resolve(k)) : k)}:${toJsonText(v, resolve)}`,
      )
      .join(',')}}`;
  if (Array.isArray(value)) return `[${value.map((v) => toJsonText(v, resolve)).join(',')}]`;
  if (typeof value === 'number' && !Number.isFinite(value)) return 'null';
  return JSON.stringify(value);
};

/** Every place in `value` a mutation can touch: the value itself and each nested value. */
export type Slot = { get: () => Json; set: (v: Json) => void; parent: Obj | Json[] | undefined };

export const slots = (root: { value: Json }): Slot[] => {
  const out: Slot[] = [{ get: () => root.value, set: (v) => (root.value = v), parent: undefined }];
  const walk = (value: Json) => {
    if (value instanceof Obj) {
      for (const pair of value.pairs) {
        out.push({ get: () => pair[1], set: (v) => (pair[1] = v), parent: value });
        walk(pair[1]);
      }
    } else if (Array.isArray(value)) {
      value.forEach((item, i) => {
        out.push({ get: () => value[i] as Json, set: (v) => (value[i] = v), parent: value });
        walk(item);
      });
    }
  };
  walk(root.value);
  return out;
};

/** A deep copy (mutations work on copies: fast-check may hand the same generated value out again). */
export const clone = (value: Json): Json => {
  if (value instanceof Obj) return new Obj(value.pairs.map(([k, v]) => [k, clone(v)]));
  if (Array.isArray(value)) return value.map(clone);
  return value;
};

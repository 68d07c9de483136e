import { CURRENT_SCHEMA_VERSION, type RawEnvelope } from './envelope.js';

/**
 * Upcasters turn an event stored under an older schema version into the current shape as it is read,
 * so the log stays immutable while consumers see one shape. Each upcaster lifts one type by one
 * version; the registry chains them.
 */
export type Upcaster = (data: Record<string, unknown>, envelope: RawEnvelope) => Record<string, unknown>;

export class UpcasterRegistry {
  readonly #upcasters = new Map<string, Upcaster>();
  readonly #currentVersions = new Map<string, number>();

  constructor(private readonly defaultVersion = CURRENT_SCHEMA_VERSION) {}

  /** Registers the step from `fromVersion` to `fromVersion + 1` for `type`. */
  register(type: string, fromVersion: number, upcaster: Upcaster): this {
    const key = `${type}@${fromVersion}`;
    if (this.#upcasters.has(key)) throw new Error(`upcaster ${key} registered twice`);
    this.#upcasters.set(key, upcaster);
    this.#currentVersions.set(type, Math.max(this.currentVersion(type), fromVersion + 1));
    return this;
  }

  currentVersion(type: string): number {
    return this.#currentVersions.get(type) ?? this.defaultVersion;
  }

  upcast<E extends RawEnvelope>(envelope: E): E {
    const target = this.currentVersion(envelope.type);
    let version = envelope.metadata.schemaVersion;
    if (version >= target) return envelope;
    let data = envelope.data;
    while (version < target) {
      const step = this.#upcasters.get(`${envelope.type}@${version}`);
      if (!step) throw new Error(`no upcaster for ${envelope.type} from schema version ${version}`);
      data = step(data, envelope);
      version++;
    }
    return { ...envelope, data, metadata: { ...envelope.metadata, schemaVersion: version } };
  }
}

/** The registry every reader uses. Version 1 is the first published schema, so it is empty today. */
export const upcasters = new UpcasterRegistry();

import { describe, expect, it } from 'vitest';
import type { Entry, EntryOf } from '../history/types.js';
import { C1, C2, correctHistory } from './fixtures.js';
import { checkHistory, type Verdict } from './index.js';

// The checker against hand-made histories: the correct one passes every invariant; each deliberately
// broken variant — what a relay skipping an event, a projector applying one twice, a socket seeing a
// duplicate, … would leave in the history — fails exactly the check that guards against it.

const failed = (v: Verdict): Record<string, number> =>
  Object.fromEntries(v.checks.filter((c) => c.count > 0).map((c) => [c.id, c.count]));

const isEv = (e: Entry): e is EntryOf<'ev'> => e.k === 'ev';
const messageEvents = (h: Entry[], conv: string) =>
  h.filter((e): e is EntryOf<'log'> => e.k === 'log' && e.conv === conv && e.type === 'MessageSent');

describe('checkHistory', () => {
  it('passes a correct history and reports its figures', () => {
    const v = checkHistory(correctHistory());
    expect(failed(v)).toEqual({});
    expect(v.ok).toBe(true);
    const byId = Object.fromEntries(v.checks.map((c) => [c.id, c]));
    expect(byId['1a']!.figures.acked).toBe(8);
    expect(byId['1b']!.figures['unknown→resolved']).toBe(1);
    expect(byId['1b']!.figures['had taken effect']).toBe(1);
    expect(byId['3b']!.checked).toBeGreaterThan(20);
    const f1 = v.recovery.classes.find((c) => c.cls === 'F1')!;
    expect(f1.attempted).toBe(2);
    expect(f1.unknownResolved).toBe(1);
    expect(f1.recovery.apiMs).not.toBeNull();
    // Everything the log held at the heal had reached the devices already.
    expect(f1.recovery.clientsMs).toBe(0);
  });

  it('a relay that skips one event: every member socket has a gap', () => {
    const h = correctHistory();
    const skipped = messageEvents(h, C1)[1]!;
    const broken = h.filter((e) => !(isEv(e) && e.conv === C1 && e.seq === skipped.rev));
    const v = checkHistory(broken);
    expect(v.ok).toBe(false);
    // alice, bob and the canary (still a member then) all jump over it.
    expect(failed(v)).toEqual({ '3b': 3 });
    const gap = v.checks.find((c) => c.id === '3b')!.violations[0]!;
    expect(gap.what).toMatch(/gap/);
    expect(gap.excerpt.some((e) => isEv(e) && e.seq === skipped.rev + 1)).toBe(true);
  });

  it('a relay that skips the last event of a conversation: its members never catch up', () => {
    const h = correctHistory();
    const last = messageEvents(h, C2).at(-1)!;
    const broken = h.filter((e) => !(isEv(e) && e.conv === C2 && e.seq === last.rev));
    expect(failed(checkHistory(broken))).toEqual({ '3c': 2 });
  });

  it('a projector that applies one event twice: the read model differs from the replay', () => {
    const broken = correctHistory((rows) =>
      rows.map((r) =>
        r.side === 'live' && r.table === 'conversations' && r.key === C1
          ? { ...r, row: { ...r.row, message_count: Number(r.row.message_count) + 1 } }
          : r,
      ),
    );
    const v = checkHistory(broken);
    expect(failed(v)).toEqual({ '4': 1 });
    // The excerpt holds both versions of the row.
    const excerpt = v.checks.find((c) => c.id === '4')!.violations[0]!.excerpt;
    expect(excerpt.map((e) => e.k === 'row' && e.side)).toEqual(['live', 'replay']);
  });

  it('a read model missing a row, or holding one the replay does not: both directions count', () => {
    let dropped = false;
    const broken = correctHistory((rows) => [
      ...rows.filter((r) => {
        if (dropped || r.side !== 'live' || r.model !== 'read_models' || r.table !== 'messages') return true;
        dropped = true;
        return false;
      }),
      { model: 'read_models', side: 'replay', table: 'conversations', key: 'x', row: {} },
    ]);
    // The live messages row is gone (4: missing; 2c: a MessageSent without its row) and the replay has
    // a row the live side lacks.
    expect(failed(checkHistory(broken))).toEqual({ '2c': 1, '4': 2 });
  });

  it('a message row twice, or one no MessageSent in the log stands for', () => {
    const broken = correctHistory((rows) => {
      const message = rows.find(
        (r) => r.side === 'live' && r.model === 'read_models' && r.table === 'messages',
      )!;
      return [
        ...rows,
        message,
        { ...message, key: `${C1}|ffffffff-0000-4000-8000-000000000000` },
        { ...message, side: 'replay' as const, key: `${C1}|ffffffff-0000-4000-8000-000000000000` },
      ];
    });
    expect(failed(checkHistory(broken))).toEqual({ '2c': 2 });
  });

  it('a socket that sees a duplicate', () => {
    const h = correctHistory();
    const i = h.findIndex((e) => isEv(e) && e.d === 'dB' && e.type === 'MessageSent');
    const broken = [...h.slice(0, i + 1), { ...(h[i] as EntryOf<'ev'>), t: h[i]!.t! + 1 }, ...h.slice(i + 1)];
    const v = checkHistory(broken);
    expect(failed(v)).toEqual({ '3b': 1 });
    expect(v.checks.find((c) => c.id === '3b')!.violations[0]!.what).toMatch(/duplicate/);
  });

  it('a socket that gets another event under a seq than the log has there', () => {
    const h = correctHistory();
    const broken = h.map((e) =>
      isEv(e) && e.d === 'dD' && e.type === 'MessageSent'
        ? { ...e, id: 'ffffffff-0000-4000-8000-000000000000' }
        : e,
    );
    expect(failed(checkHistory(broken))).toEqual({ '3b': 2 });
  });

  it('an acknowledged message missing from the log is lost (and leaves a hole in its stream)', () => {
    const h = correctHistory();
    const acked = messageEvents(h, C2)[0]!;
    const v = checkHistory(h.filter((e) => e !== acked));
    expect(failed(v)['1a']).toBe(1);
    expect(failed(v)['3a']).toBe(1);
    expect(v.recovery.classes.find((c) => c.cls === 'none')!.lost).toBe(1);
  });

  it('a retried message that took effect twice is duplicated', () => {
    const h = correctHistory();
    const first = messageEvents(h, C2).at(-1)!;
    const again = {
      ...first,
      id: 'eeeeeeee-0000-4000-8000-000000000000',
      rev: first.rev + 1,
      pos: 'f'.repeat(32),
    };
    const v = checkHistory([...h, again]);
    expect(failed(v)['2a']).toBe(1);
  });

  it('an unknown outcome never settled by a retry', () => {
    const h = correctHistory();
    const broken = h.filter((e) => !((e.k === 'invoke' || e.k === 'ok') && 'a' in e && e.a === 101));
    expect(failed(checkHistory(broken))).toEqual({ '1b': 1 });
  });

  it('a retry acked over WS: an earlier attempt took effect when the message was stamped before the retry', () => {
    const h = correctHistory().map((e) =>
      (e.k === 'invoke' || e.k === 'ok') && e.a === 101
        ? e.k === 'invoke'
          ? { ...e, a: 2, via: 'ws' as const, phase: 'run' as const }
          : { k: 'ok' as const, t: e.t, op: e.op, a: 2, ...(e.seq !== undefined ? { seq: e.seq } : {}) }
        : e,
    );
    const v = checkHistory(h);
    expect(failed(v)).toEqual({});
    const figures = v.checks.find((c) => c.id === '1b')!.figures;
    expect(figures['had taken effect']).toBe(1);
    expect(figures['cannot tell (WS ack)']).toBe(0);
  });

  it('the canary gets an event of a conversation it left', () => {
    const h = correctHistory();
    const after = h.find(
      (e) => isEv(e) && e.d === 'dA' && e.conv === C1 && e.type === 'MessageSent' && e.seq > 4,
    )!;
    const v = checkHistory([...h, { ...(after as EntryOf<'ev'>), d: 'dC' }]);
    expect(failed(v)).toEqual({ '6': 1 });
  });

  it('a notification or a receipt for a non-member', () => {
    const h = correctHistory();
    const message = messageEvents(h, C2)[0]!;
    const v = checkHistory([
      ...h,
      { k: 'notif', t: 1, d: 'dB', n: 1, conv: C2, mid: message.mid!, nid: 'n1' },
      { k: 'receipt', t: 1, d: 'dC', n: 1, conv: C1, user: 'bob', readSeq: 2 },
    ]);
    expect(failed(v)).toEqual({ '6': 2 });
  });

  it('a checkpoint that goes back, or ends short of the head', () => {
    const h = correctHistory();
    const broken = h.map((e, i) =>
      e.k === 'sample' && i === h.findLastIndex((x) => x.k === 'sample')
        ? { ...e, checkpoints: { ...e.checkpoints, 'relay.relay': '0'.repeat(32) } }
        : e.k === 'final'
          ? { ...e, checkpoints: { ...e.checkpoints, 'relay.relay': '0'.repeat(32) } }
          : e,
    );
    expect(failed(checkHistory(broken))).toEqual({ '5a': 1, '5b': 1 });
  });

  it('an event a consumer set aside (quarantined) was skipped by it', () => {
    const h = correctHistory();
    const message = messageEvents(h, C1)[0]!;
    const v = checkHistory([
      ...h,
      {
        k: 'quarantine',
        side: 'live',
        consumer: 'notifier',
        pos: message.pos,
        id: message.id,
        stream: message.stream,
        type: message.type,
        error: 'cannot apply',
      },
    ]);
    expect(failed(v)).toEqual({ '5c': 1 });
    expect(v.checks.find((c) => c.id === '5c')!.violations[0]!.excerpt).toContainEqual(message);
  });

  it('an event id twice in the log, or a table holding more rows than readAll returned', () => {
    const h = correctHistory();
    const log = h.filter((e) => e.k === 'log');
    const broken = h.map((e) =>
      e === log[3] ? { ...e, id: log[2]!.id } : e.k === 'logcount' ? { ...e, rows: e.rows + 1 } : e,
    );
    const v = checkHistory(broken);
    expect(failed(v)['2b']).toBe(3);
  });

  it('a refused send that was written anyway is reported as a finding, not an invariant', () => {
    const h = correctHistory();
    const broken = h.map((e) =>
      e.k === 'unknown'
        ? { k: 'fail' as const, t: e.t, op: e.op, a: e.a, status: 503, code: 'unavailable' }
        : e,
    );
    const v = checkHistory(broken);
    expect(failed(v)).toEqual({ '1c': 1 });
    expect(v.ok).toBe(true);
  });

  it('without a snapshot the run cannot pass', () => {
    const h = correctHistory().filter((e) => e.t !== undefined);
    const v = checkHistory(h);
    expect(v.ok).toBe(false);
    expect(Object.keys(failed(v)).sort()).toEqual(['1a', '1b', '2b', '3b', '4', '5b', '6']);
  });
});

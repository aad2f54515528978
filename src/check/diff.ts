// What changed between two runs of the domain audit: the findings that are new, the ones that are
// gone, and the ones whose verdict or text changed. A finding is the same finding in both runs when
// its section, code, host and sender are the same (the message may name a new certificate or date).
// Pure: used by the API's diff of two stored check runs and by anything comparing two `--json` results.

/** The fields of a finding the comparison reads (check/types.ts Finding and store StoredFinding fit). */
export interface DiffableFinding {
  section: string;
  status: string;
  code: string;
  message: string;
  host?: string;
  sender?: string;
  fix?: string;
}

export interface FindingDiff<F extends DiffableFinding> {
  /** In the newer run only. */
  added: F[];
  /** In the older run only. */
  gone: F[];
  /** The same finding with another status, message or fix. */
  changed: Array<{ before: F; after: F }>;
  /** How many findings are the same in both runs. */
  unchanged: number;
}

function identity(f: DiffableFinding): string {
  return JSON.stringify([f.section, f.code, f.host ?? '', f.sender ?? '']);
}

function sameVerdict(a: DiffableFinding, b: DiffableFinding): boolean {
  return a.status === b.status && a.message === b.message && (a.fix ?? '') === (b.fix ?? '');
}

/**
 * The changes from `older` to `newer`. Findings sharing an identity (one per address of a host) are
 * paired equal ones first, then the rest in order as changed; what is left over is added or gone.
 */
export function diffFindings<F extends DiffableFinding>(
  older: readonly F[],
  newer: readonly F[],
): FindingDiff<F> {
  const before = new Map<string, F[]>();
  for (const f of older) {
    const key = identity(f);
    before.set(key, [...(before.get(key) ?? []), f]);
  }
  const after = new Map<string, F[]>();
  for (const f of newer) {
    const key = identity(f);
    after.set(key, [...(after.get(key) ?? []), f]);
  }
  const diff: FindingDiff<F> = { added: [], gone: [], changed: [], unchanged: 0 };
  for (const [key, olds] of before) {
    const rest = [...(after.get(key) ?? [])];
    after.delete(key);
    const unmatched: F[] = [];
    for (const old of olds) {
      const same = rest.findIndex((f) => sameVerdict(old, f));
      if (same >= 0) {
        rest.splice(same, 1);
        diff.unchanged += 1;
      } else unmatched.push(old);
    }
    for (const old of unmatched) {
      const next = rest.shift();
      if (next === undefined) diff.gone.push(old);
      else diff.changed.push({ before: old, after: next });
    }
    diff.added.push(...rest);
  }
  for (const news of after.values()) diff.added.push(...news);
  // In the order of the newer run (at most MAX_STORED_FINDINGS each: quadratic is fine).
  diff.added.sort((a, b) => newer.indexOf(a) - newer.indexOf(b));
  return diff;
}

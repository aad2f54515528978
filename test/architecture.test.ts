// The layer rule of ARCHITECTURE.md, read from the source: `cli` -> `server`/`policyd`/`monitor` -> `check`
// -> `sender` -> protocol modules and `dns`/`smtp`/`fetch`. Nothing imports a layer above itself, nothing
// outside src/cli imports src/cli, the protocol folders stay pure (no I/O folder, no I/O module), and no
// import circles (static imports and re-exports, type-only ones included). Every violation is listed.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { describe, it } from 'node:test';

const SRC = 'src';

/** Each folder's layer: a file may import its own folder or a folder of a lower layer, never a higher one. */
const LAYERS: Record<string, number> = {
  common: 0,
  // Protocol folders: pure parsing and formatting.
  mtasts: 1,
  tlsrpt: 1,
  dane: 1,
  spf: 1,
  dmarc: 1,
  dkim: 1,
  accesslog: 1,
  // The outside world, handed in as I/O; the record set and the store sit beside them.
  dns: 2,
  smtp: 2,
  fetch: 2,
  records: 2,
  store: 2,
  sender: 3,
  check: 4,
  config: 4,
  server: 5,
  policyd: 5,
  monitor: 5,
  cli: 6,
};
const PROTOCOL = new Set(['mtasts', 'tlsrpt', 'dane', 'spf', 'dmarc', 'dkim', 'accesslog']);
/** Modules that reach the outside world: a protocol folder gets its I/O handed in instead. */
const IO_MODULES =
  /^(node:)?(net|dgram|tls|http|https|http2|fs|fs\/promises|child_process|cluster|worker_threads|dns|dns\/promises)$|^(better-sqlite3|ioredis|pg)$/;

interface Edge {
  from: string;
  to: string;
  /** import type / export type: still an edge (a cycle of types is still a cycle of modules). */
  typeOnly: boolean;
  dynamic: boolean;
}

const files = readdirSync(SRC, { recursive: true, encoding: 'utf8' })
  .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
  .map((f) => join(SRC, f))
  .sort();

const folderOf = (file: string) => relative(SRC, file).split('/')[0]!;

/** Imports and re-exports of a file: [specifier, typeOnly, dynamic]. */
function importsOf(text: string): Array<[string, boolean, boolean]> {
  const found: Array<[string, boolean, boolean]> = [];
  const code = text.replace(/^\s*\/\*[\s\S]*?\*\//gm, '').replace(/^\s*\/\/.*$/gm, '');
  for (const m of code.matchAll(/^\s*(import|export)\s+(type\s+)?[^;]*?\bfrom\s+'([^']+)'/gms))
    found.push([m[3]!, m[2] !== undefined, false]);
  for (const m of code.matchAll(/^\s*import\s+'([^']+)'/gm)) found.push([m[1]!, false, false]);
  for (const m of code.matchAll(/\bimport\(\s*'([^']+)'\s*\)/g)) found.push([m[1]!, false, true]);
  return found;
}

const edges: Edge[] = [];
const externals: Array<{ from: string; module: string }> = [];
for (const file of files) {
  for (const [spec, typeOnly, dynamic] of importsOf(readFileSync(file, 'utf8'))) {
    if (!spec.startsWith('.')) {
      if (!typeOnly) externals.push({ from: file, module: spec });
      continue;
    }
    const to = normalize(join(dirname(file), spec)).replace(/\.js$/, '.ts');
    edges.push({ from: file, to, typeOnly, dynamic });
  }
}

describe('architecture: layers point one way (ARCHITECTURE.md)', () => {
  it('reads the imports of every file under src/', () => {
    assert.ok(files.length > 50, `${files.length} files`);
    const missing = edges.filter((e) => !files.includes(e.to)).map((e) => `${e.from} -> ${e.to}`);
    assert.deepEqual(missing, [], 'every relative import resolves to a file under src/');
  });

  it('every folder under src/ has a layer', () => {
    const unknown = [...new Set(files.map(folderOf))].filter((f) => !f.endsWith('.ts') && !(f in LAYERS));
    assert.deepEqual(unknown, [], 'add the folder to LAYERS (and to ARCHITECTURE.md)');
  });

  it('no file imports a higher layer, and nothing outside src/cli imports src/cli', () => {
    const violations: string[] = [];
    for (const e of edges) {
      const [from, to] = [folderOf(e.from), folderOf(e.to)];
      if (from === to) continue;
      if (to === 'cli') violations.push(`${e.from} -> ${e.to}: only src/cli imports src/cli`);
      else if ((LAYERS[to] ?? 0) > (LAYERS[from] ?? 0))
        violations.push(
          `${e.from} -> ${e.to}: ${from} (layer ${LAYERS[from]}) imports ${to} (layer ${LAYERS[to]})`,
        );
    }
    assert.deepEqual(violations, []);
  });

  it('protocol folders are pure: no I/O folder, no higher layer, no I/O module, no console', () => {
    const violations: string[] = [];
    for (const e of edges) {
      const [from, to] = [folderOf(e.from), folderOf(e.to)];
      if (PROTOCOL.has(from) && !PROTOCOL.has(to) && to !== 'common')
        violations.push(`${e.from} -> ${e.to}: a protocol module imports ${to}`);
    }
    for (const { from, module } of externals)
      if (PROTOCOL.has(folderOf(from)) && IO_MODULES.test(module))
        violations.push(`${from} imports ${module}: I/O is handed in`);
    for (const file of files.filter((f) => PROTOCOL.has(folderOf(f))))
      if (/\bconsole\./.test(readFileSync(file, 'utf8'))) violations.push(`${file} uses console`);
    assert.deepEqual(violations, []);
  });

  it('no import circles (static imports, type-only ones included)', () => {
    const graph = new Map<string, string[]>(files.map((f) => [f, []]));
    for (const e of edges) if (!e.dynamic) graph.get(e.from)?.push(e.to);
    // Tarjan's strongly connected components: each component of more than one file is a circle.
    const index = new Map<string, number>();
    const low = new Map<string, number>();
    const stack: string[] = [];
    const onStack = new Set<string>();
    const circles: string[] = [];
    let next = 0;
    const visit = (v: string) => {
      index.set(v, next);
      low.set(v, next++);
      stack.push(v);
      onStack.add(v);
      for (const w of graph.get(v) ?? []) {
        if (!index.has(w)) {
          visit(w);
          low.set(v, Math.min(low.get(v)!, low.get(w)!));
        } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
      if (low.get(v) === index.get(v)) {
        const component: string[] = [];
        let w: string;
        do {
          w = stack.pop()!;
          onStack.delete(w);
          component.push(w);
        } while (w !== v);
        const selfImport = graph.get(v)?.includes(v);
        if (component.length > 1 || selfImport) circles.push(component.sort().join(' <-> '));
      }
    };
    for (const f of files) if (!index.has(f)) visit(f);
    assert.deepEqual(circles.sort(), []);
  });
});

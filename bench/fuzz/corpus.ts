// Seed files for the fuzzer: test/fixtures (always) and any --corpus directory laid out the same way
// (tlsrpt/, mtasts/, tlsa/, txt/, ...), read in a fixed order so a seed always gives the same inputs.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Corpus } from './harness.js';

export const FIXTURES_DIR = new URL('../../test/fixtures/', import.meta.url).pathname;

export class DirCorpus implements Corpus {
  constructor(readonly dirs: readonly string[]) {}

  files(sub: string, pattern: RegExp): Array<{ name: string; bytes: Buffer }> {
    const found: Array<{ name: string; bytes: Buffer }> = [];
    for (const dir of this.dirs) {
      const folder = join(dir, sub);
      if (!existsSync(folder)) continue;
      for (const name of readdirSync(folder).sort()) {
        const path = join(folder, name);
        if (pattern.test(name) && statSync(path).isFile()) found.push({ name, bytes: readFileSync(path) });
      }
    }
    return found;
  }
}

/** Lines of the seed files that are not blank and not "#" comments. */
export function dataLines(files: Array<{ bytes: Buffer }>): string[] {
  return files.flatMap((f) =>
    f.bytes
      .toString('utf8')
      .split('\n')
      .map((line) => line.replace(/\r$/, ''))
      .filter((line) => line.trim() !== '' && !line.startsWith('#')),
  );
}

/** The first column of tab-separated seed tables, with \t \r \n \\ escapes turned into the characters. */
export function firstColumn(
  files: Array<{ bytes: Buffer }>,
  rowFilter: (line: string) => boolean = () => true,
) {
  return dataLines(files)
    .filter(rowFilter)
    .map((line) => unescapeTsv(line.split('\t')[0] ?? ''));
}

function unescapeTsv(text: string): string {
  return text.replace(/\\([trn\\])/g, (_, c: string) => ({ t: '\t', r: '\r', n: '\n', '\\': '\\' })[c] ?? c);
}

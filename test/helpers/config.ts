// For the settings tests (test/config, test/server/config, test/policyd/config): config files written to a
// temporary folder that is removed after the test file, the problems of a load that must be refused, and a
// stream that collects log lines.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after } from 'node:test';
import { ConfigError } from '../../src/config/load.js';

export interface ConfigFolder {
  dir: string;
  /** A new file `<name>-<n>.json` holding `content` (JSON unless it is a string); its path. */
  write(content: unknown): string;
}

export function configFolder(name: string): ConfigFolder {
  const dir = mkdtempSync(join(tmpdir(), `mxguard-${name}-`));
  after(() => rmSync(dir, { recursive: true, force: true }));
  let count = 0;
  return {
    dir,
    write(content) {
      const path = join(dir, `${name}-${++count}.json`);
      writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
      return path;
    },
  };
}

/** The problems of the ConfigError `load` throws; fails the test when it loads. */
export function problemsOf(load: () => unknown): string[] {
  try {
    load();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${err}`);
    return err.problems;
  }
  assert.fail('expected the settings to be refused');
}

/** Some problem matches `pattern` (and starts with `prefix`, the file, when given); else all are shown. */
export function assertProblem(problems: string[], pattern: RegExp, prefix = ''): void {
  assert.ok(
    problems.some((p) => p.startsWith(prefix) && pattern.test(p)),
    `no problem ${prefix ? `starting with ${prefix} and ` : ''}matching ${pattern}:\n${problems.join('\n')}`,
  );
}

/** A stream for a logger under test, and the lines written to it. */
export function logSink(): { stream: Writable; lines: string[] } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      lines.push(String(chunk));
      done();
    },
  });
  return { stream, lines };
}

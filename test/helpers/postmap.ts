// Ask a socketmap server through real Postfix: `postmap -q KEY socketmap:inet:HOST:PORT:NAME` (Debian package
// `postfix`), with a minimal main.cf of our own so the machine's Postfix configuration stays out.
import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface Postmap {
  /** The reply as Postfix reports it: "OK <data>", or "NOTFOUND " (postmap exits 1 without output). */
  query(key: string): Promise<string>;
}

/** A postmap with its config directory under `dir`, asking the socketmap server at host:port. */
export function postmapClient(dir: string, target: { host: string; port: number }, map = 'postfix'): Postmap {
  const config = join(dir, 'postfix');
  mkdirSync(config, { recursive: true });
  writeFileSync(join(config, 'main.cf'), 'compatibility_level = 3.6\n');
  const table = `socketmap:inet:${target.host}:${target.port}:${map}`;
  return {
    query(key) {
      return new Promise((resolve, reject) => {
        execFile('postmap', ['-c', config, '-q', key, table], { timeout: 30_000 }, (err, stdout, stderr) => {
          const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
          if (code === 0) resolve(`OK ${stdout.replace(/\n$/, '')}`);
          else if (code === 1 && stdout === '' && stderr === '') resolve('NOTFOUND ');
          else reject(new Error(`postmap -q ${key} ${table}: exit ${code}: ${stderr}${stdout}`));
        });
      });
    },
  };
}

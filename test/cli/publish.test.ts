// `mxguard publish github-pages|cloudflare-worker|nginx` through the built binary; the generated
// worker is run for real, and the nginx config is checked (and served) by nginx (a missing nginx fails).
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { request } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { runCli } from '../helpers/cli.js';
import { freePort } from '../helpers/ports.js';
import { requireCommand } from '../lab/dnssec.js';

const POLICY_FILE = fileURLToPath(new URL('../fixtures/mtasts/enforce-two-mx.txt', import.meta.url));
const POLICY = readFileSync(POLICY_FILE, 'utf8');
const tmp = mkdtempSync(join(tmpdir(), 'mxguard-cli-publish-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

let outCount = 0;
const freshOut = () => join(tmp, `out-${++outCount}`);

function publish(target: string, out: string, ...extra: string[]) {
  return runCli([
    'publish',
    target,
    '--policy',
    POLICY_FILE,
    '--domain',
    'Example.COM.',
    '--out',
    out,
    ...extra,
  ]);
}

/** The TXT record line publish prints, with a UTC YYYYMMDDHHMMSS id. */
const TXT_LINE = /^ {2}_mta-sts\.example\.com\. 3600 IN TXT "v=STSv1; id=\d{14}"$/m;

describe('publish github-pages', () => {
  const out = freshOut();
  const r = publish('github-pages', out);

  it('exits 0 and lists the files and the TXT record', () => {
    assert.equal(r.code, 0, r.stderr);
    for (const f of ['.nojekyll', '.well-known/mta-sts.txt', 'CNAME', 'README.md']) {
      assert.ok(r.stdout.includes(`  ${join(out, f)}\n`), `${f} not listed in ${r.stdout}`);
    }
    assert.match(r.stdout, TXT_LINE);
  });

  it('writes the site', () => {
    assert.equal(readFileSync(join(out, '.well-known/mta-sts.txt'), 'utf8'), POLICY);
    assert.equal(readFileSync(join(out, '.nojekyll'), 'utf8'), '');
    assert.equal(readFileSync(join(out, 'CNAME'), 'utf8'), 'mta-sts.example.com\n');
  });

  it('README says the DNS steps', () => {
    const readme = readFileSync(join(out, 'README.md'), 'utf8');
    assert.match(readme, /mta-sts\.example\.com\. 3600 IN CNAME <user>\.github\.io\./);
    assert.match(readme, /Enforce HTTPS/);
    assert.match(readme, /_mta-sts\.example\.com\. 3600 IN TXT "v=STSv1; id=\d{14}"/);
  });
});

describe('publish cloudflare-worker', () => {
  const out = freshOut();
  const r = publish('cloudflare-worker', out);

  it('exits 0 and writes worker.js, wrangler.toml and README.md', () => {
    assert.equal(r.code, 0, r.stderr);
    for (const f of ['worker.js', 'wrangler.toml', 'README.md']) assert.ok(existsSync(join(out, f)), f);
    assert.match(r.stdout, TXT_LINE);
  });

  it('wrangler.toml routes the well-known path of mta-sts.DOMAIN to the worker', () => {
    const toml = readFileSync(join(out, 'wrangler.toml'), 'utf8');
    assert.match(toml, /^main = "worker\.js"$/m);
    assert.match(toml, /^pattern = "mta-sts\.example\.com\/\.well-known\/mta-sts\.txt"$/m);
    assert.match(toml, /^zone_name = "example\.com"$/m);
    assert.match(toml, /^name = "mta-sts-example-com"$/m);
  });

  type Worker = { default: { fetch(request: Request): Promise<Response> | Response } };
  const load = async () => (await import(pathToFileURL(join(out, 'worker.js')).href)) as Worker;
  const call = async (method: string, path: string) =>
    (await load()).default.fetch(new Request(`https://mta-sts.example.com${path}`, { method }));

  it('GET of the well-known path serves the policy as text/plain; charset=utf-8', async () => {
    const res = await call('GET', '/.well-known/mta-sts.txt');
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'text/plain; charset=utf-8');
    assert.equal(res.headers.get('location'), null);
    assert.equal(await res.text(), POLICY);
  });

  it('HEAD of the well-known path: 200 without a body', async () => {
    const res = await call('HEAD', '/.well-known/mta-sts.txt');
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'text/plain; charset=utf-8');
    assert.equal(await res.text(), '');
  });

  it('a query string does not change the path', async () => {
    const res = await call('GET', '/.well-known/mta-sts.txt?x=1');
    assert.equal(res.status, 200);
  });

  for (const [method, path] of [
    ['GET', '/'],
    ['GET', '/.well-known/mta-sts.txt/'],
    ['GET', '/.well-known/MTA-STS.txt'],
    ['GET', '/.well-known/'],
    ['POST', '/.well-known/mta-sts.txt'],
    ['PUT', '/.well-known/mta-sts.txt'],
  ] as const) {
    it(`${method} ${path}: 404, no redirect`, async () => {
      const res = await call(method, path);
      assert.equal(res.status, 404);
      assert.equal(res.headers.get('location'), null);
    });
  }
});

describe('publish nginx', () => {
  const out = freshOut();
  const r = publish('nginx', out);
  const confPath = join(out, 'mta-sts.example.com.conf');

  it('exits 0 and writes the server block, the policy and README.md', () => {
    assert.equal(r.code, 0, r.stderr);
    for (const f of ['mta-sts.example.com.conf', 'mta-sts.txt', 'README.md']) {
      assert.ok(r.stdout.includes(`  ${join(out, f)}\n`), f);
    }
    assert.equal(readFileSync(join(out, 'mta-sts.txt'), 'utf8'), POLICY);
    assert.match(r.stdout, TXT_LINE);
  });

  it('the server block has TLS, the host name, certificate placeholders and the exact location', () => {
    const conf = readFileSync(confPath, 'utf8');
    assert.match(conf, /^\s*listen 443 ssl;$/m);
    assert.match(conf, /^\s*server_name mta-sts\.example\.com;$/m);
    assert.match(conf, /^\s*ssl_certificate\s+\/etc\/ssl\/mta-sts\.example\.com\/fullchain\.pem;$/m);
    assert.match(conf, /^\s*ssl_certificate_key\s+\/etc\/ssl\/mta-sts\.example\.com\/privkey\.pem;$/m);
    assert.match(conf, /location = \/\.well-known\/mta-sts\.txt \{/);
    assert.match(conf, /default_type text\/plain;/);
    assert.match(conf, /charset utf-8;/);
    assert.match(conf, /location \/ \{\s*return 404;\s*\}/);
    assert.doesNotMatch(conf, /return 30\d|rewrite /, 'never redirects');
  });

  it('README has the install steps', () => {
    const readme = readFileSync(join(out, 'README.md'), 'utf8');
    assert.match(readme, /install -D -m 0644 mta-sts\.txt \/var\/www\/mta-sts\.example\.com\/mta-sts\.txt/);
    assert.match(readme, /nginx -t/);
    assert.match(readme, /_mta-sts\.example\.com\. 3600 IN TXT/);
  });

  it('nginx accepts the config and serves the policy', async () => {
    // A missing tool fails here, naming the Debian package (.ci/run installs both).
    const nginx = requireCommand('nginx', 'nginx');
    const openssl = requireCommand('openssl', 'openssl');
    const lab = join(tmp, 'nginx-lab');
    mkdirSync(join(lab, 'ssl'), { recursive: true });
    const cert = spawnSync(openssl, [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-subj',
      '/CN=mta-sts.example.com',
      '-days',
      '2',
      '-keyout',
      join(lab, 'ssl/privkey.pem'),
      '-out',
      join(lab, 'ssl/fullchain.pem'),
    ]);
    assert.equal(cert.status, 0, cert.stderr?.toString());

    // `nginx -t` on the generated block, only the certificate placeholders pointed at a test certificate.
    const conf = readFileSync(confPath, 'utf8').replaceAll('/etc/ssl/mta-sts.example.com/', `${lab}/ssl/`);
    writeFileSync(join(lab, 'site.conf'), conf);
    const wrapper = (site: string) =>
      `pid ${lab}/nginx.pid;\nerror_log ${lab}/error.log;\nevents {}\n` +
      `http {\n  access_log off;\n  client_body_temp_path ${lab}/body;\n  include ${site};\n}\n`;
    writeFileSync(join(lab, 'test.conf'), wrapper(join(lab, 'site.conf')));
    const check = spawnSync(nginx, ['-t', '-e', join(lab, 'error.log'), '-c', join(lab, 'test.conf')]);
    assert.equal(check.status, 0, `nginx -t failed: ${check.stderr}`);

    // Serve it on a loopback port, the policy at the path the README installs it to.
    const port = await freePort();
    const served = conf
      .replace('listen 443 ssl;', `listen 127.0.0.1:${port} ssl;`)
      .replace(/^\s*listen \[::\]:443 ssl;\n/m, '')
      .replace('/var/www/mta-sts.example.com/mta-sts.txt', join(out, 'mta-sts.txt'));
    writeFileSync(join(lab, 'served.conf'), served);
    writeFileSync(join(lab, 'serve.conf'), wrapper(join(lab, 'served.conf')));
    const daemon = spawn(
      nginx,
      ['-e', join(lab, 'error.log'), '-c', join(lab, 'serve.conf'), '-g', 'daemon off; master_process off;'],
      { stdio: 'ignore' },
    );
    try {
      const get = (method: string, path: string) => httpsGet(port, method, path);
      const policy = await retry(() => get('GET', '/.well-known/mta-sts.txt'));
      assert.equal(policy.status, 200);
      assert.equal(policy.contentType, 'text/plain; charset=utf-8');
      assert.equal(policy.body, POLICY);
      const head = await get('HEAD', '/.well-known/mta-sts.txt');
      assert.equal(head.status, 200);
      for (const [method, path] of [
        ['GET', '/'],
        ['GET', '/.well-known/'],
        ['GET', '/.well-known/mta-sts.txt/'],
        ['POST', '/.well-known/mta-sts.txt'],
      ] as const) {
        const res = await get(method, path);
        assert.equal(res.status, 404, `${method} ${path}`);
        assert.equal(res.location, undefined);
      }
    } finally {
      daemon.kill();
    }
  });
});

describe('publish azure-static-web-app', () => {
  const out = freshOut();
  const r = publish('azure-static-web-app', out);

  it('exits 0 and writes the policy, staticwebapp.config.json, index.html and README.md', () => {
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, TXT_LINE);
    for (const f of ['.well-known/mta-sts.txt', 'staticwebapp.config.json', 'index.html', 'README.md']) {
      assert.ok(existsSync(join(out, f)), f);
    }
    assert.equal(readFileSync(join(out, '.well-known/mta-sts.txt'), 'utf8'), POLICY);
    assert.match(readFileSync(join(out, 'README.md'), 'utf8'), /CNAME <app-name>\.azurestaticapps\.net\./);
  });

  it('the config uses only Static Web Apps keys and no rule that redirects or rewrites', () => {
    const config = JSON.parse(
      readFileSync(join(out, 'staticwebapp.config.json'), 'utf8'),
    ) as StaticWebAppConfig;
    const known = [
      'routes',
      'navigationFallback',
      'responseOverrides',
      'globalHeaders',
      'mimeTypes',
      'trailingSlash',
    ];
    for (const key of Object.keys(config)) assert.ok(known.includes(key), `unknown key ${key}`);
    for (const route of config.routes ?? []) {
      assert.equal(typeof route.route, 'string');
      assert.equal(route.redirect, undefined);
      assert.equal(route.rewrite, undefined);
      assert.equal(route.statusCode, undefined);
    }
    assert.equal(config.navigationFallback, undefined, 'a fallback would answer unknown paths with a page');
    assert.ok(['auto', undefined].includes(config.trailingSlash), 'always/never may redirect');
  });

  it('served by the rules of staticwebapp.config.json: text/plain, 200, no redirect; other paths 404', async () => {
    const server = staticWebApp(out);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    try {
      const get = await fetch(`http://127.0.0.1:${port}/.well-known/mta-sts.txt`, { redirect: 'manual' });
      assert.equal(get.status, 200);
      assert.equal(get.headers.get('content-type'), 'text/plain; charset=utf-8');
      assert.equal(get.headers.get('location'), null);
      assert.equal(await get.text(), POLICY);
      const head = await fetch(`http://127.0.0.1:${port}/.well-known/mta-sts.txt`, { method: 'HEAD' });
      assert.equal(head.status, 200);
      const post = await fetch(`http://127.0.0.1:${port}/.well-known/mta-sts.txt`, { method: 'POST' });
      assert.equal(post.status, 405);
      assert.equal((await fetch(`http://127.0.0.1:${port}/other`)).status, 404);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

interface StaticWebAppConfig {
  routes?: Array<{
    route: string;
    methods?: string[];
    headers?: Record<string, string>;
    redirect?: string;
    rewrite?: string;
    statusCode?: number;
  }>;
  mimeTypes?: Record<string, string>;
  navigationFallback?: unknown;
  trailingSlash?: string;
}

/**
 * A static server with the parts of Azure Static Web Apps' rules the bundle relies on: the first route whose
 * `route` equals the path applies its `methods` (others: 405) and `headers`; otherwise a file's type comes from
 * `mimeTypes` by extension; anything missing is 404.
 */
function staticWebApp(root: string): Server {
  const config = JSON.parse(
    readFileSync(join(root, 'staticwebapp.config.json'), 'utf8'),
  ) as StaticWebAppConfig;
  return createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const route = config.routes?.find((r) => r.route === path);
    if (route?.methods && !route.methods.includes(req.method ?? '')) {
      res.writeHead(405).end();
      return;
    }
    const file = join(root, path);
    if (!file.startsWith(root) || !existsSync(file) || path === '/') {
      res.writeHead(404).end();
      return;
    }
    const extension = path.slice(path.lastIndexOf('.'));
    const type = config.mimeTypes?.[extension] ?? 'application/octet-stream';
    // Route headers win over the MIME type (header names compared without case, as HTTP does).
    const headers: Record<string, string> = { 'content-type': type };
    for (const [name, value] of Object.entries(route?.headers ?? {})) headers[name.toLowerCase()] = value;
    res.writeHead(200, headers);
    res.end(req.method === 'HEAD' ? undefined : readFileSync(file));
  });
}

describe('publish: checks before writing', () => {
  it('an invalid policy: exit 1, errors named by file and line, nothing written', () => {
    const bad = fileURLToPath(new URL('../fixtures/mtasts/invalid-several.txt', import.meta.url));
    const out = freshOut();
    const r = runCli(['publish', 'nginx', '--policy', bad, '--domain', 'example.com', '--out', out]);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      new RegExp(`${bad.replace(/[.]/g, '\\.')}: error \\[MTASTS_POLICY_MODE\\] line 2: `),
    );
    assert.match(r.stderr, /invalid policy, nothing written/);
    assert.equal(existsSync(out), false);
  });

  it('a repeated mode is refused (strict)', () => {
    const dup = fileURLToPath(new URL('../fixtures/mtasts/duplicate-mode.txt', import.meta.url));
    const out = freshOut();
    const r = runCli(['publish', 'github-pages', '--policy', dup, '--domain', 'example.com', '--out', out]);
    assert.equal(r.code, 1);
    assert.equal(existsSync(out), false);
  });

  it('an unreadable policy: exit 2, nothing written', () => {
    const out = freshOut();
    const missing = join(tmp, 'nope.txt');
    const r = runCli(['publish', 'nginx', '--policy', missing, '--domain', 'example.com', '--out', out]);
    assert.equal(r.code, 2);
    assert.equal(r.stderr, `mxguard: ${missing}: cannot read: no such file\n`);
    assert.equal(existsSync(out), false);
  });

  for (const domain of [
    'exa_mple.com',
    '*.example.com',
    'localhost',
    'a..example.com',
    'mail.example.com:25',
    '',
  ]) {
    it(`--domain ${JSON.stringify(domain)}: exit 2`, () => {
      const out = freshOut();
      const r = publish('nginx', out, '--domain', domain);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /^mxguard: --domain "/);
      assert.equal(existsSync(out), false);
    });
  }

  it('an IDN --domain is written in A-label form', () => {
    const out = freshOut();
    const r = publish('github-pages', out, '--domain', 'Bücher.example');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(readFileSync(join(out, 'CNAME'), 'utf8'), 'mta-sts.xn--bcher-kva.example\n');
  });

  it('existing files are kept without --force (exit 2 naming the file), replaced with it', () => {
    const out = freshOut();
    mkdirSync(join(out, '.well-known'), { recursive: true });
    const existing = join(out, '.well-known/mta-sts.txt');
    writeFileSync(existing, 'old\n');
    const r = publish('github-pages', out);
    assert.equal(r.code, 2);
    assert.equal(r.stderr, `mxguard: ${existing}: already exists (use --force to overwrite)\n`);
    assert.equal(readFileSync(existing, 'utf8'), 'old\n');
    assert.equal(existsSync(join(out, 'CNAME')), false, 'nothing is written');

    const forced = publish('github-pages', out, '--force');
    assert.equal(forced.code, 0, forced.stderr);
    assert.equal(readFileSync(existing, 'utf8'), POLICY);
  });

  it('--json lists the files and the TXT record', () => {
    const out = freshOut();
    const r = publish('cloudflare-worker', out, '--json');
    assert.equal(r.code, 0, r.stderr);
    const result = JSON.parse(r.stdout);
    assert.equal(result.target, 'cloudflare-worker');
    assert.equal(result.domain, 'example.com');
    assert.equal(result.host, 'mta-sts.example.com');
    assert.deepEqual(
      result.files,
      ['worker.js', 'wrangler.toml', 'README.md'].map((f) => join(out, f)),
    );
    assert.equal(result.txt.name, '_mta-sts.example.com');
    assert.match(result.txt.value, /^v=STSv1; id=\d{14}$/);
  });

  it('policy warnings are shown on stderr and do not stop publishing', () => {
    const warned = fileURLToPath(new URL('../fixtures/mtasts/testing-crlf-warnings.txt', import.meta.url));
    const out = freshOut();
    const r = runCli(['publish', 'nginx', '--policy', warned, '--domain', 'example.com', '--out', out]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /warning \[MTASTS_FIELD_TYPO\] line 4: /);
    assert.equal(readFileSync(join(out, 'mta-sts.txt'), 'utf8'), readFileSync(warned, 'utf8'));
  });

  it('policy from standard input', () => {
    const out = freshOut();
    const r = runCli(['publish', 'nginx', '--policy', '-', '--domain', 'example.org', '--out', out], {
      input: POLICY,
    });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(readFileSync(join(out, 'mta-sts.txt'), 'utf8'), POLICY);
    assert.ok(existsSync(join(out, 'mta-sts.example.org.conf')));
  });

  it('usage errors: unknown target, missing option (exit 2)', () => {
    assert.equal(
      runCli(['publish', 'apache', '--policy', POLICY_FILE, '--domain', 'a.b', '--out', tmp]).code,
      2,
    );
    const r = runCli(['publish', 'nginx', '--policy', POLICY_FILE, '--out', freshOut()]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--domain/);
  });

  it('--help lists the targets with an example', () => {
    const r = runCli(['publish', '--help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /github-pages/);
    assert.match(r.stdout, /Examples:\n {2}mxguard /);
  });
});

interface Fetched {
  status: number;
  contentType?: string;
  location?: string;
  body: string;
}

function httpsGet(port: number, method: string, path: string): Promise<Fetched> {
  return new Promise((resolveFetch, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method,
        path,
        servername: 'mta-sts.example.com',
        headers: { host: 'mta-sts.example.com' },
        rejectUnauthorized: false,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          body += chunk;
        });
        res.on('end', () =>
          resolveFetch({
            status: res.statusCode ?? 0,
            contentType: res.headers['content-type'],
            location: res.headers.location,
            body,
          }),
        );
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** Retry while the server starts (connection refused), a bounded number of times. */
async function retry<T>(fn: () => Promise<T>, attempts = 100): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (err) {
      if (i >= attempts) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

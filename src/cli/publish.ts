// `mxguard publish`: turn a policy file into a bundle for static hosting of
// https://mta-sts.DOMAIN/.well-known/mta-sts.txt (RFC 8461 §3.3): GitHub Pages, a Cloudflare Worker, nginx,
// Azure Static Web Apps (the route Exchange admins' guides describe).
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { domainToASCII } from 'node:url';
import { Argument, type Command } from 'commander';
import { hostNameProblem } from '../common/hostname.js';
import { quoteTxt } from '../common/txt.js';
import type { StsPolicy } from '../mtasts/policy.js';
import { formatStsRecord, stsIdFromDate } from '../mtasts/record.js';
import { POLICY_PATH } from '../mtasts/url.js';
import { checkPolicyText } from './policy.js';
import { CliError, formatProblem, printJson, readInputBytes } from './util.js';

const TARGETS = ['github-pages', 'cloudflare-worker', 'nginx', 'azure-static-web-app'] as const;
type Target = (typeof TARGETS)[number];

/** RFC 8461 §3.3: the policy is fetched from this path on the host mta-sts.DOMAIN. */

interface PublishOptions {
  policy: string;
  domain: string;
  out: string;
  force?: boolean;
  json?: boolean;
}

/** What a bundle is generated from. */
interface BundleInput {
  domain: string;
  host: string;
  policyText: string;
  policy: StsPolicy;
  txtName: string;
  txtValue: string;
}

export function register(program: Command): void {
  program
    .command('publish')
    .description('Write a ready-to-deploy bundle that serves an MTA-STS policy over HTTPS')
    .addArgument(new Argument('<target>', 'where the policy will be hosted').choices(TARGETS))
    .requiredOption(
      '--policy <file>',
      'the policy file (checked like `policy validate`), or - for standard input',
    )
    .requiredOption('--domain <domain>', 'the mail domain (the policy is served from mta-sts.<domain>)')
    .requiredOption('--out <dir>', 'the folder to write the bundle to (created if missing)')
    .option('--force', 'overwrite files that already exist')
    .option('--json', 'print { target, domain, host, files, txt } as JSON')
    .addHelpText(
      'after',
      `
Targets:
  github-pages       .nojekyll, .well-known/mta-sts.txt, CNAME and README.md for a GitHub Pages site
  cloudflare-worker  worker.js (serves the policy), wrangler.toml with the route, README.md
  nginx              mta-sts.<domain>.conf (server block), mta-sts.txt, README.md
  azure-static-web-app  .well-known/mta-sts.txt, staticwebapp.config.json (text/plain, no redirect),
                     index.html (Static Web Apps wants a default file), README.md

The policy is checked first; an invalid policy writes nothing (exit 1). Existing files are kept
unless --force is given (exit 2). Prints the files written and the _mta-sts TXT record to publish,
with a new id (change it whenever the policy changes).

Examples:
  mxguard policy create --mx mx1.example.com > mta-sts.txt
  mxguard publish github-pages --policy mta-sts.txt --domain example.com --out site
  mxguard publish cloudflare-worker --policy mta-sts.txt --domain example.com --out worker
  mxguard publish nginx --policy mta-sts.txt --domain example.com --out nginx --force
  mxguard publish azure-static-web-app --policy mta-sts.txt --domain example.com --out swa`,
    )
    .action((target: Target, opts: PublishOptions) => {
      publish(target, opts);
    });
}

function publish(target: Target, opts: PublishOptions): void {
  const domain = mailDomain(opts.domain);
  const policyName = opts.policy === '-' ? '<stdin>' : opts.policy;
  const bytes = readInputBytes(opts.policy);
  const checked = checkPolicyText(bytes);
  for (const p of [...checked.errors, ...checked.warnings]) {
    process.stderr.write(`${formatProblem(policyName, p)}\n`);
  }
  if (!checked.policy) {
    process.stderr.write(`mxguard: ${policyName}: invalid policy, nothing written\n`);
    process.exitCode = 1;
    return;
  }
  if (domain.startsWith('mta-sts.')) {
    process.stderr.write(
      `mxguard: warning: --domain ${domain}: give the mail domain; the policy will be served from mta-sts.${domain}\n`,
    );
  }

  const input: BundleInput = {
    domain,
    host: `mta-sts.${domain}`,
    policyText: Buffer.from(bytes).toString('utf8'),
    policy: checked.policy,
    txtName: `_mta-sts.${domain}`,
    txtValue: formatStsRecord({ id: stsIdFromDate(new Date()), extensions: [] }),
  };
  const files = bundleFiles(target, input);

  const outDir = resolve(opts.out);
  const paths = Object.keys(files).map((rel) => join(outDir, rel));
  if (!opts.force) {
    const existing = paths.find((p) => existsSync(p));
    if (existing) throw new CliError(2, `${existing}: already exists (use --force to overwrite)`);
  }
  for (const [rel, content] of Object.entries(files)) {
    const path = join(outDir, rel);
    try {
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, content);
    } catch (err) {
      throw new CliError(
        2,
        `${path}: cannot write: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      );
    }
  }

  const record = `${input.txtName}. 3600 IN TXT ${quoteTxt(input.txtValue)}`;
  if (opts.json) {
    printJson({
      target,
      domain,
      host: input.host,
      files: paths,
      txt: { name: input.txtName, value: input.txtValue, record },
    });
    return;
  }
  process.stdout.write(
    [
      `Wrote ${paths.length} files for https://${input.host}${POLICY_PATH}:`,
      ...paths.map((p) => `  ${p}`),
      'Publish this DNS record (use a new id whenever the policy changes):',
      `  ${record}`,
      `Next steps: ${join(outDir, 'README.md')}`,
      '',
    ].join('\n'),
  );
}

/** The --domain value as a lower-case ASCII host name without a trailing dot, or a usage error. */
function mailDomain(value: string): string {
  const trimmed = value.endsWith('.') ? value.slice(0, -1) : value;
  const ascii = /^[\x21-\x7e]*$/.test(trimmed) ? trimmed.toLowerCase() : domainToASCII(trimmed);
  const why =
    ascii === ''
      ? 'not a host name'
      : !ascii.includes('.')
        ? 'needs at least two labels (example.com)'
        : hostNameProblem(ascii);
  if (why) throw new CliError(2, `--domain "${value}": ${why}`);
  return ascii;
}

function bundleFiles(target: Target, input: BundleInput): Record<string, string> {
  switch (target) {
    case 'github-pages':
      return {
        '.nojekyll': '',
        '.well-known/mta-sts.txt': input.policyText,
        CNAME: `${input.host}\n`,
        'README.md': githubPagesReadme(input),
      };
    case 'cloudflare-worker':
      return {
        'worker.js': workerScript(input),
        'wrangler.toml': wranglerToml(input),
        'README.md': cloudflareReadme(input),
      };
    case 'nginx':
      return {
        [`${input.host}.conf`]: nginxConf(input),
        'mta-sts.txt': input.policyText,
        'README.md': nginxReadme(input),
      };
    case 'azure-static-web-app':
      return {
        '.well-known/mta-sts.txt': input.policyText,
        'staticwebapp.config.json': staticWebAppConfig(),
        'index.html': `<!doctype html><title>${input.host}</title><p>MTA-STS policy host of ${input.domain}.</p>\n`,
        'README.md': azureReadme(input),
      };
  }
}

/**
 * Azure Static Web Apps configuration: the policy path answers GET and HEAD as text/plain (RFC 8461 §3.3:
 * senders want text/plain and follow no redirect), `.txt` files get that type everywhere, and no navigation
 * fallback or trailing-slash rule that could redirect. Everything else is the default 404.
 */
function staticWebAppConfig(): string {
  const config = {
    routes: [
      {
        route: POLICY_PATH,
        methods: ['GET', 'HEAD'],
        headers: { 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'max-age=300' },
      },
    ],
    mimeTypes: { '.txt': 'text/plain; charset=utf-8' },
    trailingSlash: 'auto',
  };
  return `${JSON.stringify(config, null, 2)}\n`;
}

function summary(input: BundleInput): string {
  const p = input.policy;
  return `mode ${p.mode}, max_age ${p.maxAge}, ${p.mx.length} mx`;
}

/** DNS and follow-up steps shared by every README. */
function commonSteps(input: BundleInput, first: number): string {
  return `${first}. Publish the \`_mta-sts\` TXT record. Put a new \`id\` in it every time you change the
   policy: senders only fetch the policy again when the id changes.

       ${input.txtName}. 3600 IN TXT ${quoteTxt(input.txtValue)}

${first + 1}. Check that it works: \`curl -i https://${input.host}${POLICY_PATH}\` must answer 200 with
   \`Content-Type: text/plain\` and no redirect, over a certificate valid for ${input.host}.

${first + 2}. Publish a TLS-RPT record (\`_smtp._tls.${input.domain}\`, RFC 8460) to receive reports about
   failed TLS connections. Start in mode testing; move to mode enforce once the reports are clean.
`;
}

function githubPagesReadme(input: BundleInput): string {
  return `# MTA-STS policy for ${input.domain} on GitHub Pages

Generated by mxguard. This folder is a GitHub Pages site that serves
https://${input.host}${POLICY_PATH} (${summary(input)}).

1. Push these files, including \`.nojekyll\` (without it Pages leaves out the \`.well-known\` folder),
   to a GitHub repository and turn on Pages for its branch (Settings → Pages).

2. In DNS, point the policy host at GitHub Pages (replace <user> with your GitHub user or
   organisation name):

       ${input.host}. 3600 IN CNAME <user>.github.io.

3. In Settings → Pages, check that the custom domain is ${input.host} (the \`CNAME\` file sets it),
   wait for the certificate, then tick **Enforce HTTPS**. Senders fetch the policy over HTTPS only.

${commonSteps(input, 4)}`;
}

function cloudflareReadme(input: BundleInput): string {
  return `# MTA-STS policy for ${input.domain} as a Cloudflare Worker

Generated by mxguard. \`worker.js\` answers GET and HEAD of https://${input.host}${POLICY_PATH}
with the policy (${summary(input)}) as \`text/plain; charset=utf-8\`, and 404 to everything else.

1. The zone ${input.domain} must be on Cloudflare. If the zone is a parent of ${input.domain}, change
   \`zone_name\` in \`wrangler.toml\`.

2. In DNS, create a proxied (orange cloud) record for the policy host so the route receives traffic,
   e.g. \`${input.host}. AAAA 100::\`. Cloudflare's certificate covers it.

3. Deploy: \`npx wrangler deploy\` in this folder.

${commonSteps(input, 4)}`;
}

function nginxReadme(input: BundleInput): string {
  const conf = `${input.host}.conf`;
  return `# MTA-STS policy for ${input.domain} on nginx

Generated by mxguard. \`${conf}\` is a server block for ${input.host} that serves \`mta-sts.txt\`
(${summary(input)}) at ${POLICY_PATH} and answers 404 to everything else.

1. Install the files:

       install -D -m 0644 mta-sts.txt /var/www/${input.host}/mta-sts.txt
       install -m 0644 ${conf} /etc/nginx/conf.d/${conf}

2. In DNS, point ${input.host} at this server (A/AAAA or CNAME).

3. Get a certificate for ${input.host} (e.g. with certbot) and put it where the placeholders in
   \`${conf}\` say: /etc/ssl/${input.host}/fullchain.pem and /etc/ssl/${input.host}/privkey.pem.

4. \`nginx -t && nginx -s reload\`

${commonSteps(input, 5)}`;
}

function azureReadme(input: BundleInput): string {
  return `# MTA-STS policy for ${input.domain} on Azure Static Web Apps

Generated by mxguard. This folder is a Static Web App that serves https://${input.host}${POLICY_PATH}
(${summary(input)}) as \`text/plain\` without a redirect (\`staticwebapp.config.json\`). \`index.html\` is there
because Static Web Apps refuses a deployment without a default file.

1. Create a Static Web App (the Free plan is enough) in the Azure portal, with "Other" as the deployment
   source, and copy its deployment token (Overview → Manage deployment token).

2. Deploy this folder:

       npx @azure/static-web-apps-cli deploy . --env production --deployment-token <token>

3. Add the custom domain $input.host(Custom domains → Add → Custom domain on other DNS): create the
   CNAME it shows, e.g.

       $input.host. 3600 IN CNAME <app-name>.azurestaticapps.net.

   and wait until Azure has validated it and issued the certificate.

$commonSteps(input, 4)`;
}

function workerScript(input: BundleInput): string {
  return `// Generated by mxguard: serves the MTA-STS policy of ${input.domain} at
// https://${input.host}${POLICY_PATH} (RFC 8461 §3.3). GET and HEAD of that path get the
// policy as text/plain; everything else gets 404. It never redirects (senders do not follow redirects).
const POLICY = ${JSON.stringify(input.policyText)};
const POLICY_PATH = ${JSON.stringify(POLICY_PATH)};
const TEXT = 'text/plain; charset=utf-8';

export default {
  async fetch(request) {
    const { pathname } = new URL(request.url);
    const readable = request.method === 'GET' || request.method === 'HEAD';
    if (pathname !== POLICY_PATH || !readable) {
      return new Response('Not found\\n', { status: 404, headers: { 'Content-Type': TEXT } });
    }
    return new Response(request.method === 'HEAD' ? null : POLICY, {
      status: 200,
      headers: { 'Content-Type': TEXT },
    });
  },
};
`;
}

function wranglerToml(input: BundleInput): string {
  const name = `mta-sts-${input.domain.replace(/\./g, '-')}`.slice(0, 63).replace(/-+$/, '');
  return `# Generated by mxguard: deploy with \`npx wrangler deploy\` (see README.md).
name = "${name}"
main = "worker.js"
compatibility_date = "2024-09-23"
workers_dev = false

[[routes]]
pattern = "${input.host}${POLICY_PATH}"
zone_name = "${input.domain}"
`;
}

function nginxConf(input: BundleInput): string {
  const h = input.host;
  return `# Generated by mxguard: serves the MTA-STS policy of ${input.domain} (RFC 8461 §3.3).
# Replace the certificate placeholders with a certificate valid for ${h}.
server {
    listen 443 ssl;
    listen [::]:443 ssl;
    server_name ${h};

    ssl_certificate     /etc/ssl/${h}/fullchain.pem;
    ssl_certificate_key /etc/ssl/${h}/privkey.pem;

    location = ${POLICY_PATH} {
        if ($request_method !~ ^(GET|HEAD)$) {
            return 404;
        }
        alias /var/www/${h}/mta-sts.txt;
        types { }
        default_type text/plain;
        charset utf-8;
    }

    location / {
        return 404;
    }
}
`;
}

// The setup status of `mxguard serve` (issue 12, the dashboard's front page): what still stands between
// the admin and a working setup, each with its fix. Global items come from the config (no domain, no
// HTTPS listener, no mail intake); per hosted domain the certificate for mta-sts.DOMAIN, and live lookups: `mta-sts.DOMAIN` must resolve
// (RFC 8461 §3.3: senders fetch the policy over HTTPS there), the published `_mta-sts` id must be the
// current one (§3.1), `_smtp._tls` must exist with a `rua` serve can receive (RFC 8460 §3), and a report
// should arrive when senders fetch the policy.
import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { lookupTxt } from '../check/lookup.js';
import { lookupAddresses } from '../sender/host.js';
import type { Domain } from '../store/types.js';
import { parseTlsRptRecord, selectTlsRptRecord } from '../tlsrpt/record.js';
import type { ServeSettings } from './config.js';
import type { ServeConfig, ServerContext } from './context.js';
import { publishedIdStatus } from './livecheck.js';
import { certsDir, hostCertificateFiles } from './tls.js';

export interface SetupItem {
  /** Absent: about the server as a whole. */
  domain?: string;
  code: string;
  message: string;
  fix: string;
}

export interface SetupStatus {
  /** false while serve cannot receive anything (no domain, or no way in for senders at all). */
  receiving: boolean;
  /** One sentence for the top of the page. */
  summary: string;
  items: SetupItem[];
}

const DAY_MS = 86_400_000;
/** Domains looked up at the same time. */
const SETUP_CONCURRENCY = 16;
/** No report for this long although senders fetch the policy: the rua probably reaches nothing. */
const REPORT_SILENCE_DAYS = 3;

/** The setup status now (live DNS lookups through ctx.resolver, one domain after another). */
export async function setupStatus(ctx: ServerContext): Promise<SetupStatus> {
  const config = ctx.config as Partial<ServeSettings> & ServeConfig;
  const domains = (await ctx.store.listDomains()).filter((d) => !d.watchOnly);
  const https = config.tlsListen !== undefined;
  const behindProxy = config.trustProxy !== undefined && config.trustProxy !== false;
  const mailIntake = config.smtp !== undefined || config.imap !== undefined;
  const listen = `http://${config.listen.host}:${config.listen.port}`;
  const items: SetupItem[] = [];
  if (domains.length === 0) {
    items.push({
      code: 'SETUP_NO_DOMAIN',
      message: 'no domain is configured: serve hosts no MTA-STS policy and expects no TLS-RPT report',
      fix: 'add a domain below, or run: mxguard domain add DOMAIN --mx HOST',
    });
  }
  if (!https) {
    items.push({
      code: 'SETUP_NO_HTTPS',
      message: `no HTTPS listener: senders fetch policies only over HTTPS on port 443 (RFC 8461 §3.3), and serve listens on ${listen} only${behindProxy ? ' (a reverse proxy in front of it must terminate HTTPS for every mta-sts.DOMAIN)' : ''}`,
      fix: 'start serve with --tls-listen 0.0.0.0:443 (with certificates or acme), or put an HTTPS reverse proxy in front of it (trustProxy)',
    });
  }
  if (!mailIntake) {
    items.push({
      code: 'SETUP_NO_MAIL_INTAKE',
      message:
        'no SMTP receiver and no IMAP mailbox: TLS-RPT reports sent to a mailto: rua never reach serve',
      fix: "start serve with --smtp-listen 0.0.0.0:25 (and point the rua domain's MX here), configure imap to poll the mailbox, or publish rua=https://mta-sts.DOMAIN/tlsrpt",
    });
  }
  // A few domains at a time: with a resolver that does not answer, each waits for its timeouts.
  for (let i = 0; i < domains.length; i += SETUP_CONCURRENCY) {
    const batch = domains.slice(i, i + SETUP_CONCURRENCY);
    const found = await Promise.all(
      batch.map(async (d) => [
        ...(https ? certificateItems(config, d, ctx.now()) : []),
        ...(await domainSetupItems(ctx, d, mailIntake)),
      ]),
    );
    items.push(...found.flat());
  }
  const receiving = domains.length > 0 && (https || behindProxy || mailIntake);
  const why = items
    .filter((i) => i.domain === undefined)
    .map((i) => i.code)
    .map((code) => GLOBAL_REASON[code])
    .filter(Boolean);
  const summary = !receiving
    ? `mxguard cannot receive anything yet: ${why.join('; ')}.`
    : items.length === 0
      ? 'Setup complete: policies are served and reports can come in.'
      : `${items.length} setup problem${items.length === 1 ? '' : 's'} left: see each fix below.`;
  return { receiving, summary, items };
}

const GLOBAL_REASON: Record<string, string> = {
  SETUP_NO_DOMAIN: 'no domain is configured',
  SETUP_NO_HTTPS: 'no HTTPS listener serves policies or takes reports',
  SETUP_NO_MAIL_INTAKE: 'no SMTP or IMAP intake takes reports by mail',
};

/**
 * The certificate the HTTPS listener would present for mta-sts.DOMAIN (tls.ts: the configured one, else
 * the certs folder's, else the default): missing, unreadable, expired or not naming the host (RFC 8461
 * §3.3: senders validate it like any HTTPS certificate).
 */
function certificateItems(config: Partial<ServeSettings> & ServeConfig, d: Domain, now: Date): SetupItem[] {
  const host = `mta-sts.${d.name}`;
  const inFolder = hostCertificateFiles(certsDir(config.dataDir), host);
  const files =
    config.certificates?.[host] ?? (existsSync(inFolder.cert) ? inFolder : config.defaultCertificate);
  const item = (code: string, message: string): SetupItem[] => [
    {
      domain: d.name,
      code,
      message,
      fix: config.acme
        ? `wait for ACME to issue it (serve orders one for ${host}), or see the serve log for why it failed`
        : `put fullchain.pem and privkey.pem for ${host} in ${inFolder.cert.replace(/[^/]+$/, '')}, configure certificates["${host}"], or enable acme`,
    },
  ];
  if (!files) return item('SETUP_NO_CERTIFICATE', `the HTTPS listener has no certificate for ${host}`);
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(readFileSync(files.cert));
  } catch (err) {
    return item(
      'SETUP_CERTIFICATE_INVALID',
      `the certificate for ${host} (${files.cert}) cannot be read: ${(err as Error).message}`,
    );
  }
  if (leaf.checkHost(host) === undefined) {
    return item(
      'SETUP_CERTIFICATE_INVALID',
      `the certificate served for ${host} (${files.cert}) does not name it (${leaf.subjectAltName ?? leaf.subject})`,
    );
  }
  if (new Date(leaf.validTo).getTime() <= now.getTime()) {
    return item(
      'SETUP_CERTIFICATE_INVALID',
      `the certificate for ${host} expired on ${new Date(leaf.validTo).toISOString()}`,
    );
  }
  return [];
}

/** What the live lookups show about one hosted domain; `mailIntake` unknown (the CLI): rua not judged. */
export async function domainSetupItems(
  ctx: Pick<ServerContext, 'store' | 'resolver' | 'now'>,
  d: Domain,
  mailIntake: boolean | undefined,
): Promise<SetupItem[]> {
  const items: SetupItem[] = [];
  const add = (code: string, message: string, fix: string) =>
    items.push({ domain: d.name, code, message, fix });
  const policyHost = `mta-sts.${d.name}`;
  const addresses = await lookupAddresses(ctx.resolver, policyHost);
  if (addresses.all.length === 0) {
    const why = addresses.failures[0]?.summary ?? 'no A or AAAA record';
    add(
      'SETUP_POLICY_HOST_DNS',
      `${policyHost} does not resolve (${why}): senders cannot fetch the policy`,
      `publish ${policyHost}. A (or AAAA, or CNAME) pointing to this server`,
    );
  }
  const published = await publishedIdStatus(ctx, d.name);
  if (!published.matches) {
    add(
      'SETUP_ID_NOT_CURRENT',
      published.published
        ? `_mta-sts.${d.name} publishes id ${published.published}, but the policy served now is ${published.current}: senders keep their cached policy`
        : (published.error ?? `_mta-sts.${d.name} is not published`),
      `publish _mta-sts.${d.name}. TXT "v=STSv1; id=${published.current}"`,
    );
  }
  const owner = `_smtp._tls.${d.name}`;
  const txt = await lookupTxt(ctx.resolver, owner);
  const selection = selectTlsRptRecord(txt.kind === 'records' ? txt.records : []);
  let rua: string[] = [];
  if (selection.kind === 'one') {
    try {
      rua = parseTlsRptRecord(selection.record).record.rua;
    } catch {
      rua = [];
    }
  }
  const wanted = `${owner}. TXT "v=TLSRPTv1; rua=${d.rua.join(',')}"`;
  if (rua.length === 0) {
    add(
      'SETUP_NO_TLSRPT',
      txt.kind === 'failed'
        ? `${owner}: ${txt.reason}`
        : `${owner} has no valid TLS-RPT record: senders send no reports`,
      `publish ${wanted}`,
    );
  } else if (mailIntake === false && rua.every((u) => u.toLowerCase().startsWith('mailto:'))) {
    add(
      'SETUP_RUA_UNREACHABLE',
      `${owner} sends reports to ${rua.join(', ')}, but serve runs no SMTP or IMAP intake: they never reach it`,
      'start serve with --smtp-listen (or imap), or publish rua=https://mta-sts.DOMAIN/tlsrpt',
    );
  }
  const now = ctx.now();
  const since = new Date(now.getTime() - REPORT_SILENCE_DAYS * DAY_MS);
  const [lastFetch] = (await ctx.store.listFetches(d.name, { limit: 1 })).items;
  if (lastFetch && lastFetch.at >= since.toISOString() && d.createdAt < since.toISOString()) {
    const day = (t: Date) => t.toISOString().slice(0, 10);
    const counts = await ctx.store.dailyCounts(d.name, day(since), day(now));
    if (counts.every((c) => c.successful + c.failed === 0)) {
      add(
        'SETUP_NO_REPORTS',
        `senders fetch the policy (last at ${lastFetch.at}), but no TLS-RPT report arrived in ${REPORT_SILENCE_DAYS} days`,
        `check that ${owner} points to an intake serve runs (${d.rua.join(', ')})`,
      );
    }
  }
  return items;
}

// `mxguard tlsa hook certbot`: run after an ACME renewal (certbot --deploy-hook, which sets RENEWED_LINEAGE; or
// --cert/--key from acme.sh --reloadcmd and dehydrated's deploy_cert). It checks that the TLSA record of the key
// now deployed has been in DNS for at least 2 x TTL (RFC 7671 §8.1); if so it drops the previous key's record
// and stages --next-key's, by DNS UPDATE; if not it publishes the missing record, says loudly what to do and
// exits 1 so the ACME client logs it. The decision is src/dane/rollover.ts checkDeployment; the times come from
// DATA_DIR/tlsa-rollover.json (tlsa-state.ts).
import { join } from 'node:path';
import type { Command } from 'commander';
import {
  checkDeployment,
  checkKeyMatches,
  type DeployVerdict,
  keyRecord,
  sameRecord,
} from '../dane/rollover.js';
import { formatTlsa, parseTlsa, type TlsaRecord } from '../dane/tlsa.js';
import {
  addPublishingOptions,
  changedText,
  daneCall,
  ownerOf,
  type PublishingOptions,
  publisherOf,
  publishRRset,
  readKey,
  readLeaf,
  readPublished,
  rrsetReader,
} from './tlsa-rollover.js';
import { notePublished, readState, writeState } from './tlsa-state.js';
import { CliError, intOption, printJson } from './util.js';

interface HookOptions extends PublishingOptions {
  host: string;
  port: string;
  cert?: string;
  key?: string;
  nextKey?: string;
  ttl: string;
  json?: boolean;
}

export function register(tlsa: Command): void {
  const hook = tlsa.command('hook').description('deploy hooks for ACME clients that keep TLSA records right');
  addPublishingOptions(
    hook
      .command('certbot')
      .description('after a renewal: drop the old key record when the new one is safe, else say what to do')
      .requiredOption('--host <host>', 'the MX host name (the owner is _PORT._tcp.HOST.)')
      .option('--port <port>', 'TCP port of the owner name', '25')
      .option('--cert <file>', 'the renewed certificate (default: $RENEWED_LINEAGE/cert.pem)')
      .option('--key <file>', 'its private key (default: $RENEWED_LINEAGE/privkey.pem)')
      .option('--next-key <file>', 'the key staged for the following renewal: its 3 1 1 is published too')
      .option('--ttl <seconds>', 'TTL for a new RRset (an existing RRset keeps its own)', '3600'),
  )
    .option('--json', 'print the verdict as JSON')
    .addHelpText(
      'after',
      `
certbot runs deploy hooks with RENEWED_LINEAGE=/etc/letsencrypt/live/NAME; the hook reads cert.pem and
privkey.pem there. acme.sh (--reloadcmd) and dehydrated (deploy_cert) pass --cert and --key instead.
--dns-server and --tsig-key are required: the hook reads the RRset from that server and updates it.

What it does with the key now deployed (its 3 1 1):
  published >= 2 x TTL ago   drops the previous key's record (known from DATA_DIR/tlsa-rollover.json),
                             publishes --next-key's; exit 0
  published, but more recently, or first seen in DNS now
                             changes nothing but adds --next-key's; prints when it is safe; exit 1
  not in DNS                 publishes it beside the old record at once; exit 1: until 2 x TTL have passed,
                             DANE senders may defer mail to this host: put the previous certificate back
In both exit-1 cases run the same command again after the time printed: it then drops the old record.

Examples:
  $ certbot renew --reuse-key --deploy-hook 'mxguard tlsa hook certbot --host mx.example.com \\
      --dns-server 192.0.2.53 --tsig-key /etc/mxguard/update.key --data-dir /var/lib/mxguard'
  $ acme.sh --install-cert -d mx.example.com --key-file /etc/ssl/mx.key --fullchain-file /etc/ssl/mx.pem \\
      --reloadcmd 'mxguard tlsa hook certbot --host mx.example.com --cert /etc/ssl/mx.pem --key /etc/ssl/mx.key \\
      --dns-server 192.0.2.53 --tsig-key /etc/mxguard/update.key --data-dir /var/lib/mxguard && systemctl reload postfix'`,
    )
    .action((opts: HookOptions) => runCertbotHook(opts));
}

async function runCertbotHook(opts: HookOptions): Promise<void> {
  const port = intOption('--port', opts.port, 0, 65535);
  const owner = ownerOf(opts.host, port);
  const ttlForNew = intOption('--ttl', opts.ttl, 1, 2 ** 31 - 1);
  const timeoutMs = intOption('--timeout', opts.timeout, 1, 3600) * 1000;
  const lineage = process.env.RENEWED_LINEAGE;
  const certFile = opts.cert ?? (lineage ? join(lineage, 'cert.pem') : undefined);
  const keyFile = opts.key ?? (lineage ? join(lineage, 'privkey.pem') : undefined);
  if (certFile === undefined || keyFile === undefined) {
    throw new CliError(
      2,
      'RENEWED_LINEAGE is not set (certbot sets it for deploy hooks): give --cert and --key',
    );
  }
  const publisher = await publisherOf(opts);
  if (publisher === undefined) throw new CliError(2, 'tlsa hook certbot needs --dns-server and --tsig-key');

  const cert = readLeaf(certFile);
  const spki = readKey(keyFile);
  daneCall(() => checkKeyMatches(spki, keyFile, cert, certFile));
  const deployed = keyRecord(spki);
  const next = opts.nextKey === undefined ? undefined : keyRecord(readKey(opts.nextKey));

  const published = await readPublished(await rrsetReader(opts, publisher.server, timeoutMs), owner);
  if (published === undefined) {
    throw new CliError(
      2,
      `cannot read the TLSA RRset of ${owner} from ${publisher.server.host}: nothing changed`,
    );
  }
  const ttl = published.records.length > 0 ? (published.ttl ?? ttlForNew) : ttlForNew;
  const state = readState(opts.dataDir);
  const known = state.owners[owner];
  const deployedText = formatTlsa(deployed);
  const since = known?.published[deployedText];
  const now = new Date();
  const verdict = checkDeployment({
    owner,
    deployed,
    previous: known?.deployed === undefined ? undefined : parseTlsa(known.deployed),
    next,
    published: published.records,
    ttl,
    publishedAt: since === undefined ? undefined : new Date(since),
    now,
  });

  const unchanged =
    verdict.publish.length === published.records.length &&
    verdict.publish.every((r) => published.records.some((p) => sameRecord(p, r)));
  const result = unchanged
    ? undefined
    : await publishRRset(publisher, owner, verdict.publish, ttl, timeoutMs);
  // The deployed key becomes "previous" only once it is safe: until then the old record must stay droppable.
  notePublished(
    state,
    owner,
    verdict.publish.map((r) => formatTlsa(r)),
    now,
    verdict.status === 'safe' ? deployedText : known?.deployed,
  );
  writeState(opts.dataDir, state);

  const message = verdictText(verdict, owner, deployed, ttl);
  if (opts.json) {
    printJson({
      owner,
      status: verdict.status,
      deployed: deployedText,
      ttl,
      publishedSince: state.owners[owner]?.published[deployedText] ?? null,
      safeAt: verdict.safeAt?.toISOString() ?? null,
      rrset: verdict.publish.map((r) => formatTlsa(r)),
      dropped: verdict.dropped.map((r) => formatTlsa(r)),
      updated: result !== undefined,
      message,
    });
  } else {
    const stream = verdict.status === 'safe' ? process.stdout : process.stderr;
    stream.write(`${message}\n`);
    stream.write(`${verdict.publish.map((r) => formatTlsa(r, owner)).join('\n')}\n`);
    if (result) stream.write(`; zone ${result.zone}: ${changedText(result)}\n`);
  }
  if (verdict.status !== 'safe') process.exitCode = 1;
}

function verdictText(v: DeployVerdict, owner: string, deployed: TlsaRecord, ttl: number): string {
  const key = `the deployed key's record (${formatTlsa(deployed).slice(0, 22)}…)`;
  const when = v.safeAt?.toISOString();
  switch (v.status) {
    case 'safe':
      return v.dropped.length > 0
        ? `ok: ${key} has been in DNS for at least 2 x TTL (${2 * ttl} s); dropped the previous key's record at ${owner}`
        : `ok: ${key} has been in DNS for at least 2 x TTL (${2 * ttl} s); the RRset at ${owner} is:`;
    case 'too-early':
      return (
        `DANE WARNING: ${key} at ${owner} has not been in DNS for 2 x TTL (${2 * ttl} s) yet: resolvers may still ` +
        `hold an RRset without it until ${when}, and DANE senders will defer mail to this host until then. ` +
        `Put the previous certificate and key back until ${when}, then run this command again to drop the old record.`
      );
    case 'not-published':
      return (
        `DANE ERROR: ${key} was NOT in DNS at ${owner}: DANE senders defer mail to this host now. It has been ` +
        `published beside the old record; put the previous certificate and key back until ${when}, ` +
        `then deploy the new one and run this command again to drop the old record.`
      );
  }
}

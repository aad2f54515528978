// `mxguard tlsa rollover` and `mxguard tlsa publish`: plan a TLSA key rollover (RFC 7671 §8.1) and publish the
// records by DNS UPDATE (RFC 2136) signed with TSIG (RFC 8945) through src/dns/update.ts. Also the pieces the
// certbot hook (tlsa-hook.ts) shares: reading the RRset and its TTL, publishing it and noting when.
import type { X509Certificate } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { describeCertificate, loadCertificates } from '../dane/cert.js';
import { DaneError } from '../dane/error.js';
import {
  checkKeyMatches,
  generateKey,
  type KeyType,
  keyRecord,
  keySpki,
  type PublishedRRset,
  planRollover,
  type RolloverPlan,
} from '../dane/rollover.js';
import { formatTlsa, type TlsaRecord, tlsaOwner } from '../dane/tlsa.js';
import { DnsClient } from '../dns/client.js';
import { DnsError } from '../dns/error.js';
import { parseResolverOption } from '../dns/resolvconf.js';
import type { Resolver } from '../dns/resolver.js';
import {
  DnsUpdateError,
  type PublishResult,
  readTsigKeyFile,
  replaceRRsets,
  type UpdateServer,
} from '../dns/update.js';
import { networkFromOptions } from './netopts.js';
import { notePublished, readState, type TlsaState, writeState } from './tlsa-state.js';
import { CliError, collect, intOption, printJson, readInputBytes } from './util.js';

/** The options of every command that publishes. */
export interface PublishingOptions {
  dnsServer?: string;
  tsigKey?: string;
  zone?: string;
  dataDir: string;
  resolver?: string[];
  timeout: string;
}

interface RolloverOptions extends PublishingOptions {
  host: string;
  port: string;
  cert: string;
  nextKey?: string;
  nextCert?: string;
  generateNextKey?: string;
  keyType: string;
  ttl?: string;
  json?: boolean;
}

interface PublishOptionsCli extends PublishingOptions {
  host: string;
  port: string;
  cert: string;
  nextKey?: string;
  ttl: string;
  json?: boolean;
}

export function addPublishingOptions(command: Command): Command {
  return command
    .option(
      '--dns-server <ip[:port]>',
      'the primary name server that accepts DNS UPDATE (RFC 2136) for the zone',
    )
    .option('--tsig-key <file>', 'TSIG key file (BIND/Knot `key "name" {...};` or hmac-sha256:name:secret)')
    .option('--zone <zone>', 'the zone to update (default: found by SOA lookup at --dns-server)')
    .option('--data-dir <dir>', `where the rollover state file (tlsa-rollover.json) lives`, './data')
    .option('--timeout <seconds>', 'time limit of each DNS step', '10');
}

export function register(tlsa: Command): void {
  addPublishingOptions(
    tlsa
      .command('rollover')
      .description('plan a TLSA key rollover: the records to publish now, the steps and how long to wait')
      .requiredOption('--host <host>', 'the MX host name (the owner is _PORT._tcp.HOST.)')
      .option('--port <port>', 'TCP port of the owner name', '25')
      .requiredOption('--cert <file>', 'the certificate deployed now (PEM or DER, leaf first)')
      .option('--next-key <file>', 'the key of the next certificate (PEM, private or public)')
      .option('--next-cert <file>', 'the next certificate (with --next-key: must be that key)')
      .option(
        '--generate-next-key <file>',
        'make the next key and write it here (mode 600; never overwrites)',
      )
      .option('--key-type <type>', 'for --generate-next-key: ec (P-256) or rsa (2048)', 'ec')
      .option('--ttl <seconds>', 'the TLSA TTL when DNS cannot tell (the plan waits for the larger of both)')
      .option(
        '--resolver <ip[:port]>',
        'without --dns-server: the DNS resolver to read the RRset from (repeatable; default: /etc/resolv.conf)',
        collect,
      ),
  )
    .option('--json', 'print the plan as JSON')
    .addHelpText(
      'after',
      `
A key rollover that never breaks DANE (RFC 7671 §8.1):
  1. publish the RRset with the current key's 3 1 1 AND the next key's 3 1 1;
  2. wait at least 2 x the RRset's TTL, so no cache still holds an RRset without the next key;
  3. deploy the certificate for the next key;
  4. replace the RRset with the next key's record (and stage the key after it).
The TTL is read from DNS (from --dns-server when given: the zone's own TTL; a caching resolver may report
less, so --ttl raises it). DANE-TA (2 x x) records already published are kept; any other record (other keys,
or other parameters than 3 1 1) is dropped.

--generate-next-key FILE writes a new private key (EC P-256 or RSA 2048, mode 600) for the next certificate
request: certbot certonly --csr (a CSR made with that key), acme.sh --keypath; see README "Rotating a
certificate without breaking DANE".

With --dns-server and --tsig-key, step 1 is done here by DNS UPDATE (one atomic replacement) and the time is
noted in DATA_DIR/tlsa-rollover.json, which \`mxguard tlsa hook certbot\` reads after the renewal.

Exit codes: 0 plan printed (and published); 1 the update was refused or failed; 2 usage, unreadable files,
keys that do not fit, or DNS unreadable without --ttl.

Examples:
  $ mxguard tlsa rollover --host mx.example.com --cert /etc/ssl/mx.pem --generate-next-key /etc/ssl/next.key
  $ mxguard tlsa rollover --host mx.example.com --cert cert.pem --next-key next.key \\
      --dns-server 192.0.2.53 --tsig-key /etc/mxguard/update.key`,
    )
    .action((opts: RolloverOptions) => runRollover(opts));

  addPublishingOptions(
    tlsa
      .command('publish')
      .description('publish the TLSA RRset of a certificate (and a next key) by DNS UPDATE')
      .requiredOption('--host <host>', 'the MX host name (the owner is _PORT._tcp.HOST.)')
      .option('--port <port>', 'TCP port of the owner name', '25')
      .requiredOption('--cert <file>', 'the certificate deployed now (PEM or DER, leaf first)')
      .option('--next-key <file>', 'also publish the 3 1 1 of this key (the next certificate key, PEM)')
      .option('--ttl <seconds>', 'TTL of the RRset', '3600'),
  )
    .option('--json', 'print what changed as JSON')
    .addHelpText(
      'after',
      `
Replaces the RRset at _PORT._tcp.HOST. with the 3 1 1 of --cert (and of --next-key), atomically: the UPDATE
carries the RRset read just before as a prerequisite, so a concurrent change fails it (NXRRSET) and changes
nothing. DANE-TA (2 x x) records already published are kept. --dns-server and --tsig-key are required.
The time of publication is noted in DATA_DIR/tlsa-rollover.json (see \`tlsa hook certbot\`).

Exit codes: 0 published (or already so); 1 the update was refused or failed; 2 usage or unreadable files.

Example:
  $ mxguard tlsa publish --host mx.example.com --cert cert.pem --next-key next.key \\
      --dns-server 192.0.2.53 --tsig-key /etc/mxguard/update.key`,
    )
    .action((opts: PublishOptionsCli) => runPublish(opts));
}

// ---------------------------------------------------------------------------------------------------------
// rollover

async function runRollover(opts: RolloverOptions): Promise<void> {
  const port = intOption('--port', opts.port, 0, 65535);
  const owner = ownerOf(opts.host, port);
  const given = [opts.nextKey, opts.nextCert, opts.generateNextKey].filter((o) => o !== undefined).length;
  if (given === 0)
    throw new CliError(2, 'give the next key: --next-key FILE, --next-cert FILE or --generate-next-key FILE');
  if (opts.generateNextKey !== undefined && given > 1) {
    throw new CliError(2, '--generate-next-key makes a new key: leave out --next-key and --next-cert');
  }
  if (opts.keyType !== 'ec' && opts.keyType !== 'rsa')
    throw new CliError(2, `--key-type: ec or rsa, not "${opts.keyType}"`);
  const ttl = opts.ttl === undefined ? undefined : intOption('--ttl', opts.ttl, 1, 2 ** 31 - 1);
  const current = readLeaf(opts.cert);
  const publisher = await publisherOf(opts);
  const timeoutMs = intOption('--timeout', opts.timeout, 1, 3600) * 1000;

  let nextSpki: Buffer;
  let nextSource: string;
  let generatedPem: string | undefined;
  if (opts.generateNextKey !== undefined) {
    const key = generateKey(opts.keyType as KeyType);
    nextSpki = key.spki;
    generatedPem = key.pem;
    nextSource = opts.generateNextKey;
  } else {
    nextSpki = opts.nextKey !== undefined ? readKey(opts.nextKey) : spkiOfCert(opts.nextCert as string);
    nextSource = (opts.nextKey ?? opts.nextCert) as string;
    if (opts.nextKey !== undefined && opts.nextCert !== undefined) {
      const nextCert = readLeaf(opts.nextCert);
      daneCall(() => checkKeyMatches(nextSpki, opts.nextKey as string, nextCert, opts.nextCert as string));
    }
  }

  const reader = await rrsetReader(opts, publisher?.server, timeoutMs);
  const published = await readPublished(reader, owner);
  const plan = daneCall(() => planRollover({ host: opts.host, port, current, nextSpki, published, ttl }));
  // The key file is written once the plan stands, before anything is published for it.
  const generated = opts.generateNextKey;
  if (generated !== undefined) writeNewKey(generated, generatedPem as string);

  let result: PublishResult | undefined;
  if (publisher !== undefined) {
    const state = readState(opts.dataDir); // a broken state file stops us before anything is published
    result = await publishRRset(publisher, owner, plan.publishNow, plan.ttl, timeoutMs);
    recordPublication(opts.dataDir, state, owner, plan.publishNow, formatTlsa(plan.current));
    plan.steps[0]!.done = true;
  }
  if (opts.json) {
    printJson(planJson(plan, { current, nextSource, generated, dnsRead: published !== undefined, result }));
    return;
  }
  printPlan(plan, current, nextSource, generated, published !== undefined, result);
}

function planJson(
  plan: RolloverPlan,
  info: {
    current: X509Certificate;
    nextSource: string;
    generated?: string;
    dnsRead: boolean;
    result?: PublishResult;
  },
) {
  const list = (records: TlsaRecord[]) => records.map((r) => formatTlsa(r));
  return {
    owner: plan.owner,
    current: { record: formatTlsa(plan.current), certificate: describeCertificate(info.current) },
    next: { record: formatTlsa(plan.next), source: info.nextSource, generated: info.generated !== undefined },
    publishNow: list(plan.publishNow),
    dropped: list(plan.dropped),
    afterDeploy: list(plan.afterDeploy),
    ttl: plan.ttl,
    ttlSource: plan.ttlSource,
    dnsRead: info.dnsRead,
    waitSeconds: plan.waitSeconds,
    steps: plan.steps,
    published: info.result ? { zone: info.result.zone, changed: info.result.changed } : null,
  };
}

function printPlan(
  plan: RolloverPlan,
  current: X509Certificate,
  nextSource: string,
  generated: string | undefined,
  dnsRead: boolean,
  result: PublishResult | undefined,
): void {
  const out: string[] = [];
  if (generated !== undefined) out.push(`generated the next key: ${generated} (mode 600)`);
  const ttlFrom =
    plan.ttlSource === 'dns' ? 'from DNS' : dnsRead ? 'from --ttl, larger than DNS says' : 'from --ttl';
  out.push(`; RRset to publish now (TTL ${plan.ttl}, ${ttlFrom}):`);
  for (const r of plan.publishNow) {
    const what =
      r === plan.current
        ? `current key: ${describeCertificate(current)}`
        : r === plan.next
          ? `next key: ${nextSource}`
          : 'DANE-TA record already published, kept';
    out.push(`${formatTlsa(r, plan.owner)} ; ${what}`);
  }
  for (const r of plan.dropped)
    out.push(`; dropped: ${formatTlsa(r)} (not the 3 1 1 of the current or the next key)`);
  out.push('; steps:');
  for (const [i, s] of plan.steps.entries()) {
    out.push(`;  ${i + 1}. [${s.done ? 'done' : 'todo'}] ${s.text}`);
    if (s.step === 'drop-old')
      for (const r of s.records ?? []) out.push(`;       ${plan.owner} IN TLSA ${r}`);
  }
  if (result) out.push(`; published in zone ${result.zone}: ${changedText(result)}`);
  process.stdout.write(`${out.join('\n')}\n`);
}

// ---------------------------------------------------------------------------------------------------------
// publish

async function runPublish(opts: PublishOptionsCli): Promise<void> {
  const port = intOption('--port', opts.port, 0, 65535);
  const owner = ownerOf(opts.host, port);
  const ttl = intOption('--ttl', opts.ttl, 1, 2 ** 31 - 1);
  const timeoutMs = intOption('--timeout', opts.timeout, 1, 3600) * 1000;
  const publisher = await publisherOf(opts);
  if (publisher === undefined) throw new CliError(2, 'tlsa publish needs --dns-server and --tsig-key');
  const current = keyRecord(spkiOfCert(opts.cert));
  const records = [current];
  if (opts.nextKey !== undefined) {
    const next = keyRecord(readKey(opts.nextKey));
    if (formatTlsa(next) !== formatTlsa(current)) records.push(next);
  }
  const reader = await rrsetReader(opts, publisher.server, timeoutMs);
  const published = await readPublished(reader, owner);
  const kept = (published?.records ?? []).filter((r) => r.usage === 2);
  const rrset = [...records, ...kept];
  const state = readState(opts.dataDir); // a broken state file stops us before anything is published
  const result = await publishRRset(publisher, owner, rrset, ttl, timeoutMs);
  recordPublication(opts.dataDir, state, owner, rrset, formatTlsa(current));
  if (opts.json)
    printJson({
      owner,
      zone: result.zone,
      records: rrset.map((r) => formatTlsa(r)),
      ttl,
      changed: result.changed,
    });
  else
    process.stdout.write(
      `${rrset.map((r) => formatTlsa(r, owner)).join('\n')}\n; zone ${result.zone}: ${changedText(result)}\n`,
    );
}

// ---------------------------------------------------------------------------------------------------------
// shared with the hook

export interface Publisher {
  server: UpdateServer;
  key: Awaited<ReturnType<typeof readTsigKeyFile>>;
  zone?: string;
}

/** --dns-server + --tsig-key (both or neither). */
export async function publisherOf(opts: PublishingOptions): Promise<Publisher | undefined> {
  if (opts.dnsServer === undefined && opts.tsigKey === undefined) {
    if (opts.zone !== undefined) throw new CliError(2, '--zone goes with --dns-server and --tsig-key');
    return undefined;
  }
  if (opts.dnsServer === undefined || opts.tsigKey === undefined) {
    throw new CliError(2, '--dns-server and --tsig-key go together');
  }
  let server: UpdateServer;
  try {
    server = parseResolverOption(opts.dnsServer);
  } catch (err) {
    if (err instanceof DnsError) throw new CliError(2, `--dns-server: ${err.message}`);
    throw err;
  }
  try {
    return { server, key: await readTsigKeyFile(opts.tsigKey), zone: opts.zone };
  } catch (err) {
    if (err instanceof DnsUpdateError) throw new CliError(2, `--tsig-key: ${err.message}`);
    throw err;
  }
}

/** The authoritative --dns-server when given (its TTLs are the zone's own), else the resolvers. */
export async function rrsetReader(
  opts: PublishingOptions,
  server: UpdateServer | undefined,
  timeoutMs: number,
): Promise<Resolver> {
  if (server !== undefined)
    return new DnsClient({ servers: [server], timeoutMs: Math.min(timeoutMs, 3000), tries: 2 });
  const network = await networkFromOptions({
    resolver: opts.resolver,
    timeout: String(timeoutMs / 1000),
    smtpPort: '25',
    httpsPort: '443',
  });
  return network.resolver;
}

/** The TLSA RRset at `owner` and its TTL; undefined when DNS gave no answer (timeout, SERVFAIL...). */
export async function readPublished(resolver: Resolver, owner: string): Promise<PublishedRRset | undefined> {
  const lookup = await resolver.tlsa(owner);
  if (lookup.outcome === 'ok') {
    const ttls = lookup.result.answers.map((a) => a.ttl ?? 0);
    return { records: lookup.values, ttl: Math.max(0, ...ttls) };
  }
  if (lookup.outcome === 'nodata' || lookup.outcome === 'nxdomain') {
    return { records: [], negativeTtl: lookup.result.negativeTtl ?? 0 };
  }
  return undefined;
}

/** Replace the RRset; a DnsUpdateError becomes exit 1 (refused, failed) or 2 (could not run). */
export async function publishRRset(
  publisher: Publisher,
  owner: string,
  records: TlsaRecord[],
  ttl: number,
  timeoutMs: number,
): Promise<PublishResult> {
  try {
    return await replaceRRsets(
      [{ name: owner, type: 'TLSA', ttl, records: records.map((r) => formatTlsa(r)) }],
      { server: publisher.server, key: publisher.key, zone: publisher.zone, timeoutMs },
    );
  } catch (err) {
    if (!(err instanceof DnsUpdateError)) throw err;
    const couldNotRun = err.code === 'UPDATE_UNREACHABLE' || err.code === 'UPDATE_TIMEOUT';
    throw new CliError(
      couldNotRun ? 2 : 1,
      `DNS UPDATE of ${owner} at ${publisher.server.host}: ${err.code}: ${err.message}`,
    );
  }
}

/** Note in the state file (read before publishing) that `records` are what `owner` holds now. */
function recordPublication(
  dataDir: string,
  state: TlsaState,
  owner: string,
  records: TlsaRecord[],
  deployed?: string,
): void {
  notePublished(
    state,
    owner,
    records.map((r) => formatTlsa(r)),
    new Date(),
    deployed,
  );
  writeState(dataDir, state);
}

export function changedText(result: PublishResult): string {
  return result.changed.length === 0 ? 'already up to date, nothing sent' : 'RRset replaced';
}

export function ownerOf(host: string, port: number): string {
  return daneCall(() => tlsaOwner(host, port), '--host');
}

/** The first certificate of a file. */
export function readLeaf(file: string): X509Certificate {
  const [leaf] = daneCall(() => loadCertificates(readInputBytes(file, 1024 * 1024)), file);
  return leaf as X509Certificate;
}

export function spkiOfCert(file: string): Buffer {
  return readLeaf(file).publicKey.export({ type: 'spki', format: 'der' });
}

export function readKey(file: string): Buffer {
  return daneCall(() => keySpki(readInputBytes(file, 1024 * 1024), file));
}

/** Write a new private key: mode 600, never over an existing file. */
function writeNewKey(path: string, pem: string): void {
  try {
    writeFileSync(path, pem, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST')
      throw new CliError(2, `--generate-next-key ${path}: the file exists; not overwriting a key`);
    throw new CliError(2, `--generate-next-key ${path}: cannot write: ${(err as Error).message}`);
  }
}

/** Run a dane/ call; a DaneError becomes exit 2 naming the input. */
export function daneCall<T>(call: () => T, input?: string): T {
  try {
    return call();
  } catch (err) {
    if (err instanceof DaneError)
      throw new CliError(2, input === undefined ? err.message : `${input}: ${err.message}`);
    throw err;
  }
}

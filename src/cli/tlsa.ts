// `mxguard tlsa generate`, `tlsa verify` and `tlsa from-host`: TLSA records (RFC 6698, RFC 7671) for SMTP DANE (RFC 7672).
import type { X509Certificate } from 'node:crypto';
import net from 'node:net';
import type { Command } from 'commander';
import { describeCertificate, loadCertificates, validityOf } from '../dane/cert.js';
import { DaneError } from '../dane/error.js';
import {
  describeTlsa,
  formatTlsa,
  generateTlsa,
  parseTlsa,
  parseTlsaField,
  type TlsaRecord,
  tlsaOwner,
} from '../dane/tlsa.js';
import { type DaneVerdict, verifyDane } from '../dane/verify.js';
import { privateAddressReason } from '../fetch/address.js';
import { defaultTlsStart, presentedChain, type TlsStart } from '../smtp/from-host.js';
import { type Network, networkFromOptions } from './netopts.js';
import { register as registerHook } from './tlsa-hook.js';
import { register as registerRollover } from './tlsa-rollover.js';
import { CliError, collect, formatProblem, intOption, printJson, readInputBytes } from './util.js';

interface GenerateOptions {
  cert: string;
  chain?: string;
  usage?: string;
  selector?: string;
  mtype?: string;
  host?: string;
  port: string;
  all?: boolean;
  json?: boolean;
}

interface FromHostOptions {
  starttls?: string;
  all?: boolean;
  resolver?: string[];
  caFile?: string[];
  allowPrivate?: boolean;
  timeout: string;
  json?: boolean;
}

interface VerifyOptions {
  cert: string;
  chain?: string;
  host?: string;
  record: string[];
  json?: boolean;
}

export function register(program: Command): void {
  const tlsa = program
    .command('tlsa')
    .description('generate, verify, look up and roll over DANE TLSA records for an SMTP server');

  tlsa
    .command('generate')
    .description('print the TLSA record(s) for a certificate')
    .requiredOption(
      '--cert <file>',
      'the server certificate, PEM or DER (a PEM file may hold the whole chain, leaf first)',
    )
    .option(
      '--chain <file>',
      'PEM file with the CA certificates after the leaf (the last one is the DANE-TA anchor)',
    )
    .option(
      '--usage <usage>',
      'certificate usage: 3 / DANE-EE (the leaf) or 2 / DANE-TA (the CA) (default 3)',
    )
    .option(
      '--selector <selector>',
      'selector: 1 / SPKI (public key) or 0 / Cert (whole certificate) (default 1)',
    )
    .option('--mtype <type>', 'matching type: 1 / SHA2-256, 2 / SHA2-512 or 0 / Full (default 1)')
    .option('--host <host>', 'the MX host name: print the full record with owner _PORT._tcp.HOST.')
    .option('--port <port>', 'TCP port of the owner name', '25')
    .option('--all', 'print every sensible combination, each with a comment on what it pins')
    .option('--json', 'print the records as JSON')
    .addHelpText(
      'after',
      `
The default, 3 1 1 (DANE-EE, public key, SHA-256), is what most DANE SMTP servers publish (RFC 7671
§5.1, RFC 7672 §3.1.1): it pins the server's key, survives renewals that keep the key, and SMTP
clients check neither names nor dates with it.

--usage 2 (DANE-TA) pins a CA instead: the trust anchor is the LAST certificate of --chain, or of the
--cert file when that file holds the whole chain. The command says which certificate it used. The
server must send that CA certificate in its chain (RFC 7672 §3.1.2), and SMTP clients then also check
the leaf's name against the MX host and the dates of the certificates below the anchor.

--all prints 3 x {1,0} x {1,2} for the leaf and, when a CA is given, 2 x {1,0} x {1,2} for the anchor.
Matching type 0 (the full certificate or key, hundreds of bytes in DNS) is left out of --all; ask for
it explicitly with --mtype 0. --all cannot be combined with --usage, --selector or --mtype.

Publish two records so a key change does not break delivery (RFC 7671 §8.1): e.g. 3 1 1 for the
current key plus 3 1 1 for the next key, or a 2 1 1 for the issuing CA.

Examples:
  $ mxguard tlsa generate --cert /etc/ssl/mx.pem --host mx.example.com
  $ mxguard tlsa generate --cert fullchain.pem --usage DANE-TA --host mx.example.com
  $ mxguard tlsa generate --cert cert.pem --chain chain.pem --all --host mx.example.com`,
    )
    .action((opts: GenerateOptions) => runGenerate(opts));

  tlsa
    .command('verify')
    .description('check a certificate chain against TLSA records; exit 0 on a usable match, 1 otherwise')
    .requiredOption(
      '--cert <file>',
      'the server certificate, PEM or DER (a PEM file may hold the chain, leaf first)',
    )
    .option('--chain <file>', 'PEM file with the certificates the server sends after the leaf')
    .option('--host <host>', 'the MX host name the leaf must match (needed by DANE-TA records)')
    .requiredOption('--record <record>', 'a TLSA record, e.g. "3 1 1 <hex>" (repeatable)', collect)
    .option('--json', 'print the verdict as JSON')
    .addHelpText(
      'after',
      `
The chain is the --cert file's certificates (leaf first) followed by those of --chain, as an SMTP
server would present them. Rules (RFC 7672):
  DANE-EE (3)  matches the leaf's key or certificate; names and dates are NOT checked.
  DANE-TA (2)  matches a CA certificate in the chain; the leaf must chain up to it, the leaf and any
               certificate below the anchor must be within their dates, and the leaf must match
               --host (so DANE-TA needs --host). The anchor's own dates are not checked.
  PKIX-TA (0), PKIX-EE (1) and unknown values are unusable for SMTP and never match.

Exit codes: 0 a usable record matched; 1 no match, no usable record, or a --record that does not
parse (the parse error is printed); 2 a certificate file that cannot be read or parsed, or bad usage.

Examples:
  $ mxguard tlsa verify --cert mx.pem --record '3 1 1 0c72ac70b745ac19998811b131d662c9ac69dbdbe7cb23e5b514b56664c5d3d6'
  $ mxguard tlsa verify --cert fullchain.pem --host mx.example.com --record '2 1 1 <hex>' --record '3 1 1 <hex>'`,
    )
    .action((opts: VerifyOptions) => runVerify(opts));

  tlsa
    .command('from-host')
    .description('print the TLSA records for the certificate chain a server presents')
    .argument('<host[:port]>', 'the server host name and port (default 25)')
    .option(
      '--starttls <protocol>',
      'smtp (STARTTLS) or none (implicit TLS); default: none on 443, 465, 993 and 995, smtp on other ports',
    )
    .option('--all', 'print every sensible combination, each with a comment on what it pins')
    .option('--resolver <ip[:port]>', 'DNS resolver to ask (repeatable; default: /etc/resolv.conf)', collect)
    .option('--ca-file <file>', 'extra trust anchors (PEM) on top of the system ones (repeatable)', collect)
    .option('--allow-private', 'connect to private, loopback and link-local addresses found in DNS')
    .option('--timeout <seconds>', 'time limit of each network step', '30')
    .option('--json', 'print the records as JSON')
    .addHelpText(
      'after',
      `
Connects to the host's first reachable address (A, then AAAA), takes the certificate chain exactly as
the server presents it, and prints the records with the owner name _PORT._tcp.HOST. (RFC 6698 §3): by
default the 3 1 1 of the server's key, with --all every combination as in \`tlsa generate --all\`
(DANE-TA records pin the last certificate the server sends).

Exit codes: 0 records printed; 2 the host cannot be resolved or reached, or the TLS handshake failed.

Examples:
  $ mxguard tlsa from-host mx.example.com
  $ mxguard tlsa from-host mail.example.com:465 --all
  $ mxguard tlsa from-host mx.example.com:587 --starttls smtp --json`,
    )
    .action((target: string, opts: FromHostOptions) => runFromHost(target, opts));

  registerRollover(tlsa);
  registerHook(tlsa);
}

// ---------------------------------------------------------------------------------------------------------
// generate

interface GeneratedRecord {
  record: TlsaRecord;
  certIndex: number;
  pins: string;
}

function runGenerate(opts: GenerateOptions): void {
  if (opts.all && (opts.usage !== undefined || opts.selector !== undefined || opts.mtype !== undefined)) {
    throw new CliError(2, '--all prints every combination: leave out --usage, --selector and --mtype');
  }
  const port = intOption('--port', opts.port, 0, 65535);
  const owner =
    opts.host === undefined ? undefined : optionValue('--host', () => tlsaOwner(opts.host as string, port));
  const { chain, sources } = readChain(opts.cert, opts.chain);
  const result = generateRecords(chain, sources, opts);
  if (opts.json) printJson({ owner: owner ?? null, ...recordsJson(result, chain, owner) });
  else printRecords(result, owner, opts.all === true);
}

interface Generated {
  generated: GeneratedRecord[];
  notes: string[];
  hint: string;
}

/** The records `generate` and `from-host` print for a chain (leaf first), per --all/--usage/--selector/--mtype. */
function generateRecords(
  chain: X509Certificate[],
  sources: string[],
  opts: { all?: boolean; usage?: string; selector?: string; mtype?: string; cert?: string },
): Generated {
  // The trust anchor is the last certificate of a chain, or a lone CA certificate given on its own.
  const taIndex = chain.length > 1 || chain[0]?.ca ? chain.length - 1 : undefined;

  const wanted = opts.all
    ? allCombinations(taIndex !== undefined)
    : [
        {
          usage: optionValue('--usage', () => parseTlsaField('usage', opts.usage ?? '3')),
          selector: optionValue('--selector', () => parseTlsaField('selector', opts.selector ?? '1')),
          matchingType: optionValue('--mtype', () => parseTlsaField('matching type', opts.mtype ?? '1')),
        },
      ];
  const notes: string[] = [];
  const generated = wanted.map(({ usage, selector, matchingType }): GeneratedRecord => {
    if (usage > 3) throw new CliError(2, `--usage: only 0-3 can be generated, got ${usage}`);
    if (selector > 1)
      throw new CliError(2, `--selector: only 0 (Cert) or 1 (SPKI) can be generated, got ${selector}`);
    if (matchingType > 2)
      throw new CliError(2, `--mtype: only 0, 1 or 2 can be generated, got ${matchingType}`);
    const forCa = usage === 0 || usage === 2;
    if (forCa && taIndex === undefined) {
      throw new CliError(
        2,
        `--usage ${usage}: ${opts.cert ?? 'the server'} holds only a leaf (not a CA) certificate; a CA record needs the CA certificate: pass --chain FILE ` +
          'or a --cert file with the whole chain',
      );
    }
    const certIndex = forCa ? (taIndex as number) : 0;
    const record = generateTlsa(chain[certIndex] as X509Certificate, usage, selector, matchingType);
    return { record, certIndex, pins: pinsComment(record, chain[certIndex] as X509Certificate) };
  });

  const usages = new Set(generated.map((g) => g.record.usage));
  if (usages.has(0) || usages.has(1)) {
    notes.push(
      'warning: PKIX-TA(0) and PKIX-EE(1) records are ignored by SMTP clients (RFC 7672 §3.1.3); use 3 or 2',
    );
  }
  if (taIndex !== undefined && (usages.has(2) || usages.has(0))) {
    notes.push(...trustAnchorNotes(chain, taIndex, sources));
  }
  return { generated, notes, hint: rolloverHint(generated, chain) };
}

function recordsJson({ generated, notes, hint }: Generated, chain: X509Certificate[], owner?: string) {
  return {
    records: generated.map((g) => ({
      usage: g.record.usage,
      selector: g.record.selector,
      matchingType: g.record.matchingType,
      data: g.record.data.toString('hex'),
      rdata: formatTlsa(g.record),
      ...(owner ? { record: formatTlsa(g.record, owner) } : {}),
      pins: g.pins,
      certificate: {
        index: g.certIndex,
        subject: describeCertificate(chain[g.certIndex] as X509Certificate),
      },
    })),
    notes,
    hint,
  };
}

function printRecords({ generated, notes, hint }: Generated, owner: string | undefined, all: boolean): void {
  for (const g of generated) {
    const line = formatTlsa(g.record, owner);
    process.stdout.write(all ? `${line} ; ${g.pins}\n` : `${line}\n`);
  }
  for (const note of notes) process.stderr.write(`${note.startsWith('warning:') ? '' : 'note: '}${note}\n`);
  process.stderr.write(`hint: ${hint}\n`);
}

/** Leaf records first (recommended order), then the trust anchor's when a CA is available. */
function allCombinations(withCa: boolean): Array<{ usage: number; selector: number; matchingType: number }> {
  const combos = [];
  for (const usage of withCa ? [3, 2] : [3]) {
    for (const selector of [1, 0]) {
      for (const matchingType of [1, 2]) combos.push({ usage, selector, matchingType });
    }
  }
  return combos;
}

function pinsComment(r: TlsaRecord, cert: X509Certificate): string {
  const what = r.selector === 1 ? 'public key' : 'whole certificate';
  const how = ['exact bytes of the', 'SHA-256 of the', 'SHA-512 of the'][r.matchingType] ?? '';
  const role = r.usage === 2 || r.usage === 0 ? "CA's" : "server's";
  const lasts =
    r.selector === 1
      ? 'stays valid across renewals that keep the key'
      : 'changes with every renewed certificate';
  const recommended = r.usage === 3 && r.selector === 1 && r.matchingType === 1 ? 'recommended; ' : '';
  return `${describeTlsa(r)}: ${how} ${role} ${what} of ${describeCertificate(cert)} (${recommended}${lasts})`;
}

function trustAnchorNotes(chain: X509Certificate[], taIndex: number, sources: string[]): string[] {
  const ta = chain[taIndex] as X509Certificate;
  const notes = [
    `the CA record pins certificate ${taIndex + 1} of ${chain.length} (${describeCertificate(ta)}), the last one in ` +
      `${sources[taIndex]}; the server must send it in its chain (RFC 7672 §3.1.2)`,
  ];
  if (!ta.ca)
    notes.push(`warning: certificate ${taIndex + 1} (${describeCertificate(ta)}) is not a CA certificate`);
  if (ta.checkIssued(ta)) {
    notes.push(
      'the anchor is a self-signed root: many servers do not send the root; if yours does not, pin the issuing ' +
        'CA instead (a --chain file holding only the intermediate)',
    );
  }
  return notes;
}

function rolloverHint(generated: GeneratedRecord[], chain: X509Certificate[]): string {
  if (generated.length > 1) {
    return 'publish two records that cover different keys (e.g. 3 1 1 and a 2 1 1), not every line above';
  }
  const record = generated[0]?.record;
  if (record?.usage === 2 || record?.usage === 0) {
    return 'the CA record survives leaf key changes; also keep a 3 1 1 for the current key if the CA may change';
  }
  const issuingCa = chain[1];
  if (issuingCa) {
    const ca = generateTlsa(issuingCa, 2, 1, 1);
    return (
      `publish a second record so a key change does not break mail (RFC 7671 §8.1): "${formatTlsa(ca)}" ` +
      `for the issuing CA ${describeCertificate(issuingCa)} (the server must send it), or the 3 1 1 of the next key`
    );
  }
  return (
    'publish a second record so a key change does not break mail (RFC 7671 §8.1): the 3 1 1 of the next key ' +
    '(generate it before switching), or a 2 1 1 for the issuing CA (pass --chain)'
  );
}

// ---------------------------------------------------------------------------------------------------------
// from-host

async function runFromHost(target: string, opts: FromHostOptions): Promise<void> {
  const { host, port } = parseHostPort(target);
  const owner = optionValue('<host>', () => tlsaOwner(host, port));
  if (opts.starttls !== undefined && opts.starttls !== 'smtp' && opts.starttls !== 'none') {
    throw new CliError(2, `--starttls: "smtp" or "none", not "${opts.starttls}"`);
  }
  const starttls: TlsStart = (opts.starttls as TlsStart | undefined) ?? defaultTlsStart(port);
  const network = await networkFromOptions({ ...opts, smtpPort: '25', httpsPort: '443' });
  const addresses = await hostAddresses(network, host);
  const failures: string[] = [];
  for (const address of addresses) {
    const result = await presentedChain({
      address,
      port,
      host,
      starttls,
      timeoutMs: network.timeoutMs,
      ca: network.ca,
    });
    if (!result.ok) {
      failures.push(`${result.code}: ${result.message}`);
      continue;
    }
    const chain = result.tls.chain;
    if (chain.length === 0) {
      failures.push(`${address}: the server presented no certificate`);
      continue;
    }
    const generated = generateRecords(
      chain,
      chain.map((_, i) => `the chain ${host} presents (certificate ${i + 1})`),
      opts,
    );
    if (opts.json) {
      printJson({
        host,
        port,
        address,
        starttls,
        tls: { version: result.tls.version, cipher: result.tls.cipher },
        owner,
        ...recordsJson(generated, chain, owner),
      });
    } else {
      process.stderr.write(
        `${host} (${address}) port ${port}, ${starttls === 'smtp' ? 'STARTTLS' : 'implicit TLS'}, ${result.tls.version}: ` +
          `${describeCertificate(chain[0] as X509Certificate)}, ${chain.length} certificate(s) presented\n`,
      );
      printRecords(generated, owner, opts.all === true);
    }
    return;
  }
  throw new CliError(2, `${host}: no address gave a certificate chain:\n  ${failures.join('\n  ')}`);
}

/** "mx.example.com" or "mx.example.com:465". */
function parseHostPort(target: string): { host: string; port: number } {
  const match = /^([^:\s]+)(?::(\d+))?$/.exec(target);
  if (!match) throw new CliError(2, `"${target}": expected HOST or HOST:PORT (a host name, not an address)`);
  const host = match[1] as string;
  if (net.isIP(host) !== 0) {
    throw new CliError(2, `"${target}": the TLSA owner name needs the host name, not an IP address`);
  }
  const port = match[2] === undefined ? 25 : intOption('<host[:port]>', match[2], 1, 65535);
  return { host, port };
}

/** The host's A then AAAA addresses; non-public ones only with --allow-private. */
async function hostAddresses(network: Network, host: string): Promise<string[]> {
  const [a, aaaa] = await Promise.all([network.resolver.a(host), network.resolver.aaaa(host)]);
  const all = [...a.values, ...aaaa.values];
  if (all.length === 0) {
    throw new CliError(2, `${host}: no A or AAAA record (A: ${a.outcome}, AAAA: ${aaaa.outcome})`);
  }
  const usable = network.allowPrivate ? all : all.filter((ip) => privateAddressReason(ip) === undefined);
  if (usable.length === 0) {
    const listed = all.map((ip) => `${ip} (${privateAddressReason(ip)})`).join(', ');
    throw new CliError(2, `${host}: only non-public addresses: ${listed}; pass --allow-private to use them`);
  }
  return usable;
}

// ---------------------------------------------------------------------------------------------------------
// verify

function runVerify(opts: VerifyOptions): void {
  const { chain } = readChain(opts.cert, opts.chain);
  const records: TlsaRecord[] = [];
  const errors: string[] = [];
  for (const [i, text] of opts.record.entries()) {
    try {
      records.push(parseTlsa(text));
    } catch (err) {
      if (!(err instanceof DaneError)) throw err;
      for (const p of err.problems) errors.push(formatProblem(`--record ${i + 1}`, p));
    }
  }
  if (errors.length > 0) {
    // A record that does not parse is invalid input content: exit 1 (not a usage error), nothing verified.
    if (opts.json) printJson({ status: 'invalid-record', errors });
    else for (const line of errors) process.stderr.write(`${line}\n`);
    process.exitCode = 1;
    return;
  }
  const verdict = verifyDane(chain, records, { host: opts.host });
  if (opts.json) printJson(verdictJson(verdict, chain));
  else printVerdict(verdict, chain, opts.cert);
  if (verdict.status !== 'match') process.exitCode = 1;
}

function printVerdict(verdict: DaneVerdict, chain: X509Certificate[], certFile: string): void {
  const out: string[] = [];
  for (const [i, cert] of chain.entries()) {
    const { notBefore, notAfter } = validityOf(cert);
    const role = i === 0 ? 'leaf' : cert.ca ? 'CA' : 'not a CA';
    out.push(
      `certificate ${i}: ${describeCertificate(cert)} (${role}; ${day(notBefore)} to ${day(notAfter)})`,
    );
  }
  for (const [i, r] of verdict.records.entries()) {
    const state = r.matches ? 'match' : r.usable ? 'no match' : 'unusable';
    out.push(`record ${i + 1}: ${shortRecord(r.record)}: ${state}: ${r.reason}`);
  }
  const matched = verdict.matched;
  if (matched) {
    const index = verdict.records.findIndex((r) => r.record === matched.record) + 1;
    out.push(`result: match (record ${index}, certificate ${matched.certIndex})`);
  } else if (verdict.status === 'no-usable-records') {
    out.push('result: no usable records (SMTP clients would use unauthenticated TLS, RFC 7672 §2.2)');
  } else {
    out.push('result: no match (SMTP clients following DANE would not deliver, RFC 7672 §2.2)');
  }
  process.stdout.write(`${out.join('\n')}\n`);
  for (const p of verdict.problems) process.stderr.write(`${formatProblem(certFile, p)}\n`);
}

function verdictJson(verdict: DaneVerdict, chain: X509Certificate[]) {
  const matched = verdict.matched;
  return {
    status: verdict.status,
    matched: matched
      ? {
          record: formatTlsa(matched.record),
          recordIndex: verdict.records.findIndex((r) => r.record === matched.record),
          certIndex: matched.certIndex,
        }
      : null,
    records: verdict.records.map((r) => ({
      record: formatTlsa(r.record),
      usage: r.record.usage,
      selector: r.record.selector,
      matchingType: r.record.matchingType,
      usable: r.usable,
      matches: r.matches,
      reason: r.reason,
      ...(r.certIndex !== undefined ? { certIndex: r.certIndex } : {}),
    })),
    chain: chain.map((cert, index) => {
      const { notBefore, notAfter } = validityOf(cert);
      return {
        index,
        subject: describeCertificate(cert),
        issuer: cert.issuer?.split('\n').join(', ') ?? '',
        ca: cert.ca,
        notBefore: notBefore.toISOString(),
        notAfter: notAfter.toISOString(),
      };
    }),
    problems: verdict.problems,
  };
}

/** "3 1 1 3111668338043de2…b4c61838" — long data shortened so each record stays on one line. */
function shortRecord(r: TlsaRecord): string {
  const hex = r.data.toString('hex');
  const data = hex.length > 64 ? `${hex.slice(0, 16)}…${hex.slice(-16)}` : hex;
  return `${r.usage} ${r.selector} ${r.matchingType} ${data}`;
}

function day(date: Date): string {
  return Number.isNaN(date.getTime()) ? '?' : date.toISOString().slice(0, 10);
}

// ---------------------------------------------------------------------------------------------------------
// shared

/** The --cert file's certificates followed by the --chain file's; `sources` names the file of each. */
function readChain(certFile: string, chainFile?: string): { chain: X509Certificate[]; sources: string[] } {
  const chain: X509Certificate[] = [];
  const sources: string[] = [];
  for (const file of chainFile === undefined ? [certFile] : [certFile, chainFile]) {
    const bytes = readInputBytes(file);
    try {
      for (const cert of loadCertificates(bytes)) {
        chain.push(cert);
        sources.push(file);
      }
    } catch (err) {
      if (err instanceof DaneError) throw new CliError(2, `${file}: ${err.message}`);
      throw err;
    }
  }
  return { chain, sources };
}

/** Run a parser for an option value; a DaneError becomes a usage error naming the option. */
function optionValue<T>(option: string, parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    if (err instanceof DaneError)
      throw new CliError(2, `${option}: ${err.problems[0]?.message ?? err.message}`);
    throw err;
  }
}

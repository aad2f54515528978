// Third-party DANE and DNSSEC verdicts, for interop tests: what Postfix's posttls-finger (package `postfix`),
// ldns-dane (package `ldnsutils`) and BIND's delv (package `bind9-dnsutils`) say about a lab name, reduced to
// one small vocabulary so they can be compared with mxguard's own verdict.
//
// posttls-finger only reads /etc/resolv.conf, which must never be edited (LAB-NOTES): it runs in a private
// mount namespace where the lab's resolv.conf is bind-mounted over it, and with MAIL_CONFIG pointing at a
// minimal main.cf of ours, so it neither depends on nor reads the machine's Postfix configuration.
// posttls-finger and delv exit 0 whatever they found, so verdicts come from their output, never exit codes.
import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type DnssecLab, requireCommand } from './dnssec.js';

/**
 * What a DANE client makes of one MX host (RFC 7672):
 * - verified: a usable TLSA record matched the chain; mismatch: usable records, none matched (no delivery);
 * - no-usable: a secure TLSA RRset without usable records (TLS, but unauthenticated, RFC 7672 §2.2);
 * - insecure: the TLSA records (or the host's addresses) are not DNSSEC-secure, DANE does not apply;
 * - no-tlsa: secure, but no TLSA records; no-dane: either of the two, for a tool that cannot tell them apart;
 * - bogus: DNSSEC validation failed on the way (the sender defers).
 */
export type DaneClass = 'verified' | 'mismatch' | 'no-usable' | 'insecure' | 'no-tlsa' | 'no-dane' | 'bogus';

export interface OracleVerdict {
  verdict: DaneClass | 'unknown';
  /** The output line(s) the verdict was read from. */
  evidence: string;
  output: string;
}

/** Two verdicts agree when equal, or when one is "no-dane" and the other says why DANE does not apply. */
export function agree(a: DaneClass | 'unknown', b: DaneClass | 'unknown'): boolean {
  if (a === 'unknown' || b === 'unknown') return false;
  if (a === b) return true;
  const noDane = new Set<string>(['no-dane', 'insecure', 'no-tlsa']);
  return (a === 'no-dane' && noDane.has(b)) || (b === 'no-dane' && noDane.has(a));
}

interface Output {
  stdout: string;
  stderr: string;
  code: number | null;
}

function exec(command: string, args: string[], options: { env?: NodeJS.ProcessEnv; input?: string } = {}) {
  return new Promise<Output>((resolve, reject) => {
    const child = execFile(
      command,
      args,
      { env: options.env, timeout: 60_000, maxBuffer: 16 << 20 },
      (err, stdout, stderr) => {
        const code = err ? ((err as { code?: unknown }).code ?? null) : 0;
        // A non-zero exit is an answer too (ldns-dane); only "could not run at all" is an error.
        if (err && typeof code !== 'number') reject(new Error(`${command} could not run: ${err.message}`));
        else resolve({ stdout, stderr, code: typeof code === 'number' ? code : null });
      },
    );
    // A tool that quits before reading its input (ldns-dane, posttls-finger on a refusal) closes the pipe: the
    // EPIPE is not a failure, its exit status above is the answer.
    child.stdin?.on('error', () => {});
    child.stdin?.end(options.input ?? '');
  });
}

// ---------------------------------------------------------------------------------------------------------
// posttls-finger

/**
 * `posttls-finger -t 10 -c -l dane DOMAIN` with the lab resolver: Postfix's own DANE client looks up the MX,
 * the addresses and TLSA records (trusting AD from the resolver), connects to port 25 and reports.
 */
export async function postTlsFinger(lab: DnssecLab, domain: string): Promise<OracleVerdict> {
  const finger = requireCommand('posttls-finger', 'postfix');
  const configDir = join(lab.dir, 'posttls-finger');
  mkdirSync(configDir, { recursive: true });
  writeFileSync(join(configDir, 'main.cf'), 'compatibility_level = 3.6\ninet_protocols = ipv4\n');
  const out = await inLabResolvConf(lab, finger, ['-t', '10', '-c', '-l', 'dane', domain], {
    ...process.env,
    MAIL_CONFIG: configDir,
  });
  return parsePostTlsFinger(out.stdout + out.stderr);
}

/**
 * Postfix 3.7's messages: "Verified TLS connection established" (a TLSA record matched), "no matching DANE
 * TLSA records" (usable records, none matched), "unsupported TLSA certificate usage" warnings and then an
 * unauthenticated session (no usable records: Postfix falls back to unauthenticated TLS), "TLSA lookup error"
 * or a failed lookup with "try again" (SERVFAIL: in this lab, DNSSEC-bogus data), and otherwise a session
 * without DANE ("Untrusted"/"Trusted"/"Anonymous TLS connection"), where posttls-finger does not say whether
 * the zone was unsigned or simply had no TLSA records.
 */
export function parsePostTlsFinger(output: string): OracleVerdict {
  const lines = output.split('\n');
  const find = (re: RegExp) => lines.find((l) => re.test(l));
  const rules: [RegExp, DaneClass][] = [
    [/no matching DANE TLSA records/, 'mismatch'],
    [/Verified TLS connection established/, 'verified'],
    [/TLSA lookup error|lookup failed:.*try again|lookup problem:.*try again/, 'bogus'],
    [/unsupported TLSA (certificate usage|selector|matching type)/, 'no-usable'],
    [/(Untrusted|Trusted|Anonymous) TLS connection established/, 'no-dane'],
  ];
  for (const [re, verdict] of rules) {
    const line = find(re);
    if (line !== undefined) return { verdict, evidence: line.replace(/^posttls-finger: /, ''), output };
  }
  return { verdict: 'unknown', evidence: '', output };
}

/** Run a command whose /etc/resolv.conf is the lab's, in a private mount namespace (LAB-NOTES). */
async function inLabResolvConf(lab: DnssecLab, command: string, args: string[], env?: NodeJS.ProcessEnv) {
  const unshare = requireCommand('unshare', 'util-linux');
  const script = 'mount --bind "$1" /etc/resolv.conf && shift && exec "$@"';
  return exec(unshare, ['-m', 'sh', '-c', script, 'sh', lab.resolvConfPath, command, ...args], { env });
}

// ---------------------------------------------------------------------------------------------------------
// ldns-dane

/**
 * The chain an SMTP server presents after STARTTLS (RFC 3207), captured with `openssl s_client` so that
 * ldns-dane (which cannot speak STARTTLS) can judge it: PEM certificates, leaf first.
 */
export async function starttlsChain(address: string, serverName: string, port = 25): Promise<string> {
  const openssl = requireCommand('openssl', 'openssl');
  const out = await exec(openssl, [
    's_client',
    '-connect',
    `${address}:${port}`,
    '-starttls',
    'smtp',
    '-servername',
    serverName,
    '-showcerts',
  ]);
  const pems = out.stdout.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----\n?/g) ?? [];
  if (pems.length === 0) {
    throw new Error(
      `openssl s_client got no certificate from ${address}:${port}:\n${out.stdout}${out.stderr}`,
    );
  }
  return pems.map((p) => (p.endsWith('\n') ? p : `${p}\n`)).join('');
}

/**
 * `ldns-dane -c CHAIN -r RESOLVER verify HOST PORT`: NLnet Labs' DANE verifier looks up the TLSA RRset at
 * _PORT._tcp.HOST through the lab resolver (trusting its AD bit) and checks the given chain against it. The
 * server name is checked too (no -n), as RFC 7672 §3.2.3 asks for DANE-TA. ldns-dane applies RFC 6698 for
 * every usage, so PKIX-TA(0)/PKIX-EE(1) records mean PKIX validation to it, where RFC 7672 §3.1.3 makes them
 * unusable for SMTP: do not use it as an oracle for those.
 */
export async function ldnsDane(
  lab: DnssecLab,
  host: string,
  chainPem: string,
  port = 25,
): Promise<OracleVerdict> {
  const ldns = requireCommand('ldns-dane', 'ldnsutils');
  const chainFile = join(lab.dir, `chain-${host}-${port}.pem`);
  writeFileSync(chainFile, chainPem);
  const out = await exec(ldns, ['-c', chainFile, '-r', lab.resolver.host, 'verify', host, String(port)]);
  return parseLdnsDane(out.stdout + out.stderr);
}

/** ldns-dane 1.8's messages; the "insecure"/"No TLSA" warnings come before its PKIX fallback's verdict. */
export function parseLdnsDane(output: string): OracleVerdict {
  const lines = output.split('\n');
  const rules: [RegExp, DaneClass][] = [
    [/records were bogus/, 'bogus'],
    [/TLSA records for \S+ were found, but were insecure/, 'insecure'],
    [/No TLSA records for \S+ were found/, 'no-tlsa'],
    [/did not dane-validate, because: no matching DANE TLSA records/, 'mismatch'],
    [/dane-validated successfully/, 'verified'],
  ];
  for (const [re, verdict] of rules) {
    const line = lines.find((l) => re.test(l));
    if (line !== undefined) return { verdict, evidence: line, output };
  }
  return { verdict: 'unknown', evidence: '', output };
}

// ---------------------------------------------------------------------------------------------------------
// delv

export interface DelvVerdict {
  status: 'secure' | 'insecure' | 'bogus' | 'unknown';
  evidence: string;
  output: string;
}

/**
 * `delv @RESOLVER -a ANCHORS +root=. NAME TYPE`: BIND's validating lookup tool fetches the records through the
 * lab resolver and validates them itself, from the lab root's DS (RFC 4035 §5), independently of unbound.
 */
export async function delv(lab: DnssecLab, name: string, type: string): Promise<DelvVerdict> {
  const command = requireCommand('delv', 'bind9-dnsutils');
  const anchors = join(lab.dir, 'delv-anchors.conf');
  // ". DS 23065 13 2 c003..." -> trust-anchors { "." static-ds 23065 13 2 "c003..."; };
  const [keyTag, algorithm, digestType, digest] = lab.trustAnchor.replace(/^\.\s+DS\s+/, '').split(/\s+/);
  writeFileSync(
    anchors,
    `trust-anchors {\n  "." static-ds ${keyTag} ${algorithm} ${digestType} "${digest}";\n};\n`,
  );
  const out = await exec(command, [
    `@${lab.resolver.host}`,
    '-p',
    String(lab.resolver.port),
    '-a',
    anchors,
    '+root=.',
    name,
    type,
  ]);
  return parseDelv(out.stdout + out.stderr);
}

/** BIND 9.18 delv: "; fully validated", "; unsigned answer", "resolution failed: ..." (bogus data). */
export function parseDelv(output: string): DelvVerdict {
  const lines = output.split('\n');
  const rules: [RegExp, DelvVerdict['status']][] = [
    [/^; (negative response, )?fully validated/, 'secure'],
    [/^; (negative response, )?unsigned answer/, 'insecure'],
    [/resolution failed: (failure|no valid|broken trust chain|insecurity proof failed)/, 'bogus'],
  ];
  for (const [re, status] of rules) {
    const line = lines.find((l) => re.test(l));
    if (line !== undefined) return { status, evidence: line, output };
  }
  return { status: 'unknown', evidence: '', output };
}

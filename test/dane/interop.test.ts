// Interop: mxguard's DANE verdicts against third-party implementations on a real DNSSEC lab (issue 3).
// knotd signs a lab root, test. and one zone per scenario; unbound validates; a private Postfix instance is
// the MX with STARTTLS; Postfix's posttls-finger and NLnet Labs' ldns-dane are the oracles, and `mxguard check`
// (the built CLI) must agree with them on every scenario. A smaller test checks our DnsClient against unbound
// (AD, SERVFAIL with EDE, the CD-bit classification), with BIND's delv as a second validator.
//
// Needs root (ports 53 and 25 on 127.0.53.x) and the Debian packages .ci/run installs (knot, unbound, postfix,
// ldnsutils, bind9-dnsutils, openssl): when one is missing the tests fail and name it. Takes about 8 s.
// Addresses: 127.0.53.1 knotd, .2 unbound, .25 and .26 Postfix; no other test file uses 127.0.53.x.
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { formatTlsa, generateTlsa } from '../../src/dane/tlsa.js';
import { DnsClient } from '../../src/dns/client.js';
import { BIN } from '../helpers/cli.js';
import { type TestCert, TestPki } from '../helpers/pki.js';
import { type DnssecLab, type DnssecZone, requireCommand, startDnssecLab } from '../lab/dnssec.js';
import {
  agree,
  type DaneClass,
  delv,
  ldnsDane,
  type OracleVerdict,
  parseDelv,
  parseLdnsDane,
  parsePostTlsFinger,
  postTlsFinger,
  starttlsChain,
} from '../lab/oracles.js';
import { type LabPostfix, startPostfix } from '../lab/postfix.js';

const MX_LEAF_ONLY = '127.0.53.25';
const MX_WITH_CHAIN = '127.0.53.26';

interface Certs {
  /** The MX certificate, with every scenario's MX host name as a subjectAltName. */
  leaf: TestCert;
  issuingCa: TestCert;
  /** A certificate of a key the server does not have. */
  otherKey: TestCert;
}

interface Scenario {
  title: string;
  domain: string;
  /** The MX host: mx.<domain>. */
  host: string;
  address: string;
  security: DnssecZone['security'];
  /** The TLSA record at _25._tcp.<host>, from the lab certificates (RFC 6698 §2.1 association data). */
  tlsa?: (certs: Certs) => string;
  /** Put the TLSA record in its own zone _25._tcp.<host> with this security instead. */
  tlsaZone?: DnssecZone['security'];
  /** What every DANE client should conclude: the lab's own sanity check. */
  expected: DaneClass;
  /** Why ldns-dane is no oracle here, when it is not. */
  ldnsNotApplicable?: string;
}

const tlsa = (pick: (c: Certs) => TestCert, usage: number) => (certs: Certs) =>
  formatTlsa(generateTlsa(pick(certs).x509, usage, 1, 1));

function scenario(
  title: string,
  name: string,
  expected: DaneClass,
  options: Partial<Pick<Scenario, 'tlsa' | 'security' | 'address' | 'tlsaZone' | 'ldnsNotApplicable'>> = {},
): Scenario {
  const domain = `${name}.test`;
  return {
    title,
    domain,
    host: `mx.${domain}`,
    address: MX_LEAF_ONLY,
    security: 'secure',
    expected,
    ...options,
  };
}

const SCENARIOS: Scenario[] = [
  scenario('1 secure, TLSA 3 1 1 matches', 'ee-match', 'verified', { tlsa: tlsa((c) => c.leaf, 3) }),
  scenario('2 secure, TLSA 3 1 1 of another key', 'ee-mismatch', 'mismatch', {
    tlsa: tlsa((c) => c.otherKey, 3),
  }),
  scenario('3 secure, only an unusable 1 1 1', 'pkix-ee-only', 'no-usable', {
    tlsa: tlsa((c) => c.leaf, 1),
    ldnsNotApplicable:
      'ldns-dane treats PKIX-EE(1) by RFC 6698 (a PKIX check), not as unusable (RFC 7672 §3.1.3)',
  }),
  scenario('4 unsigned zone with TLSA', 'unsigned', 'insecure', {
    tlsa: tlsa((c) => c.leaf, 3),
    security: 'insecure',
  }),
  scenario('5 bogus zone (DS digest wrong)', 'bogus-zone', 'bogus', {
    tlsa: tlsa((c) => c.leaf, 3),
    security: 'bogus',
  }),
  scenario('6 secure, 2 1 1 issuing CA, chain sent', 'ta-match', 'verified', {
    tlsa: tlsa((c) => c.issuingCa, 2),
    address: MX_WITH_CHAIN,
  }),
  scenario('7 secure, no TLSA', 'no-tlsa', 'no-tlsa'),
  // The DANE-specific bogus case: MX and address records are secure, only the TLSA RRset's zone is bogus.
  scenario('8 secure host, bogus TLSA zone', 'bogus-tlsa', 'bogus', {
    tlsa: tlsa((c) => c.leaf, 3),
    tlsaZone: 'bogus',
  }),
];

function zonesOf(s: Scenario, certs: Certs): DnssecZone[] {
  const records = ['@ MX 10 mx', `mx A ${s.address}`];
  const tlsaRecord = s.tlsa?.(certs);
  if (tlsaRecord === undefined) return [{ name: s.domain, security: s.security, records }];
  if (s.tlsaZone === undefined) {
    return [
      { name: s.domain, security: s.security, records: [...records, `_25._tcp.mx TLSA ${tlsaRecord}`] },
    ];
  }
  return [
    { name: s.domain, security: s.security, records },
    { name: `_25._tcp.${s.host}`, security: s.tlsaZone, records: [`@ TLSA ${tlsaRecord}`] },
  ];
}

// ---------------------------------------------------------------------------------------------------------
// mxguard's side

interface CheckReport {
  domain: string;
  status: string;
  findings: { section: string; status: string; code: string; message: string; host?: string }[];
  error?: string;
}

interface OurVerdict {
  verdict: DaneClass | 'unknown';
  /** The dane finding(s) the verdict was read from, "status CODE". */
  evidence: string;
  /** The status the verdict must carry (issue 3: pass on match, fail on mismatch/bogus/unusable, skip/info). */
  statusOk: boolean;
  report: CheckReport | undefined;
  output: string;
}

/** The dane section's verdict codes (src/check/transport.ts); rollover advice codes do not decide. */
const DANE_CODES: Record<string, { verdict: DaneClass; statuses: string[] }> = {
  DANE_TLSA_MATCH: { verdict: 'verified', statuses: ['pass'] },
  DANE_TLSA_MISMATCH: { verdict: 'mismatch', statuses: ['fail'] },
  DANE_TLSA_UNUSABLE: { verdict: 'no-usable', statuses: ['fail'] },
  DANE_ZONE_INSECURE: { verdict: 'insecure', statuses: ['skip', 'info'] },
  DANE_NO_TLSA: { verdict: 'no-tlsa', statuses: ['skip', 'info'] },
  DANE_TLSA_BOGUS: { verdict: 'bogus', statuses: ['fail'] },
};

/**
 * Read the dane findings about `host`. When the mail domain's own zone is bogus there is no MX host to check,
 * so the verdict comes from the finding that reported the bogus lookup (e.g. MX_DNSSEC_BOGUS, a fail).
 */
function ourVerdictOf(report: CheckReport, host: string): Omit<OurVerdict, 'report' | 'output'> {
  const dane = report.findings.filter((f) => f.section === 'dane' && f.host === host && DANE_CODES[f.code]);
  const decided = dane.length > 0 ? dane : report.findings.filter((f) => /_BOGUS$/.test(f.code));
  const verdicts = new Set(decided.map((f) => DANE_CODES[f.code]?.verdict ?? 'bogus'));
  const evidence = decided.map((f) => `${f.status} ${f.code}`).join(', ');
  if (verdicts.size !== 1)
    return { verdict: 'unknown', evidence: evidence || 'no dane finding', statusOk: false };
  const statusOk = decided.every((f) => (DANE_CODES[f.code]?.statuses ?? ['fail']).includes(f.status));
  return { verdict: [...verdicts][0]!, evidence, statusOk };
}

function runMxguard(lab: DnssecLab, domain: string, caFile: string): Promise<OurVerdict & { code: number }> {
  const args = [
    BIN,
    'check',
    domain,
    '--json',
    '--resolver',
    `${lab.resolver.host}:${lab.resolver.port}`,
    '--allow-private',
    '--ca-file',
    caFile,
    '--timeout',
    '10',
  ];
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      args,
      { timeout: 60_000, env: { ...process.env, NO_COLOR: '1' } },
      (err, stdout, stderr) => {
        const code = err ? Number((err as { code?: unknown }).code ?? -1) : 0;
        const output = `exit ${code}\n${stdout}${stderr}`;
        let report: CheckReport | undefined;
        try {
          report = JSON.parse(stdout) as CheckReport;
        } catch {
          resolve({ verdict: 'unknown', evidence: 'no JSON report', statusOk: false, report, output, code });
          return;
        }
        resolve({ ...ourVerdictOf(report, `mx.${domain}`), report, output, code });
      },
    );
  });
}

// ---------------------------------------------------------------------------------------------------------

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => `| ${r.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(rows[0]!), line(widths.map((w) => '-'.repeat(w))), ...rows.slice(1).map(line)].join('\n');
}

describe('oracle output parsers (outputs seen from Postfix 3.7, ldns-dane 1.8.3, BIND 9.18 delv)', () => {
  const finger: [string, string][] = [
    [
      'posttls-finger: mx.a.test[127.0.53.25]:25: Matched DANE EE certificate at depth 0: 3 1 1 AE\n' +
        'posttls-finger: Verified TLS connection established to mx.a.test[127.0.53.25]:25: TLSv1.3',
      'verified',
    ],
    [
      'posttls-finger: server certificate verification failed for mx.a.test[127.0.53.25]:25: num=65:no matching DANE TLSA records\n' +
        'posttls-finger: Untrusted TLS connection established to mx.a.test[127.0.53.25]:25: TLSv1.3',
      'mismatch',
    ],
    [
      'posttls-finger: warning: _25._tcp.mx.a.test unsupported TLSA certificate usage: 1 1 1 AE\n' +
        'posttls-finger: Untrusted TLS connection established to mx.a.test[127.0.53.25]:25: TLSv1.3',
      'no-usable',
    ],
    ['posttls-finger: Untrusted TLS connection established to mx.a.test[127.0.53.25]:25: TLSv1.3', 'no-dane'],
    [
      'posttls-finger: Destination address lookup failed: Host or domain name not found. Name service error ' +
        'for name=a.test type=MX: Host not found, try again',
      'bogus',
    ],
    [
      'posttls-finger: Failed to establish session to a.test via mx.a.test: TLSA lookup error for mx.a.test:25',
      'bogus',
    ],
    ['posttls-finger: Connection refused', 'unknown'],
  ];
  it('posttls-finger', () => {
    for (const [output, verdict] of finger) assert.equal(parsePostTlsFinger(output).verdict, verdict, output);
  });

  const ldns: [string, string][] = [
    ['CN=mx.a.test dane-validated successfully', 'verified'],
    ['CN=mx.a.test did not dane-validate, because: no matching DANE TLSA records', 'mismatch'],
    [
      'Warning! TLSA records for _25._tcp.mx.a.test. were found, but were insecure.\n' +
        'CN=mx.a.test did not dane-validate, because: unable to get local issuer certificate',
      'insecure',
    ],
    [
      'Warning! No TLSA records for _25._tcp.mx.a.test. were found.\n' +
        'CN=mx.a.test did not dane-validate, because: unable to get local issuer certificate',
      'no-tlsa',
    ],
    ['dane_query: The queried resource records were bogus', 'bogus'],
    ['CN=mx.a.test did not dane-validate, because: unable to get local issuer certificate', 'unknown'],
  ];
  it('ldns-dane', () => {
    for (const [output, verdict] of ldns) assert.equal(parseLdnsDane(output).verdict, verdict, output);
  });

  const delvOutputs: [string, string][] = [
    ['; fully validated\nmx.a.test.\t300\tIN\tA\t127.0.53.25', 'secure'],
    [';; resolution failed: ncache nxdomain\n; negative response, fully validated', 'secure'],
    ['; unsigned answer\nmx.a.test.\t300\tIN\tA\t127.0.53.25', 'insecure'],
    [';; resolution failed: failure', 'bogus'],
    [';; resolution failed: timed out', 'unknown'],
  ];
  it('delv', () => {
    for (const [output, status] of delvOutputs) assert.equal(parseDelv(output).status, status, output);
  });

  it('our verdict: the dane findings about the host, or a bogus lookup before them', () => {
    const report = (...findings: [string, string, string, string?][]) => ({
      domain: 'a.test',
      status: 'fail',
      findings: findings.map(([section, status, code, host]) => ({
        section,
        status,
        code,
        message: '',
        host,
      })),
    });
    const host = 'mx.a.test';
    const cases: [CheckReport, string, boolean][] = [
      [
        report(['dane', 'pass', 'DANE_TLSA_MATCH', host], ['dane', 'warn', 'DANE_ROLLOVER_NOT_READY', host]),
        'verified',
        true,
      ],
      [report(['dane', 'fail', 'DANE_TLSA_MISMATCH', host]), 'mismatch', true],
      [report(['dane', 'info', 'DANE_NO_TLSA', host]), 'no-tlsa', true],
      [report(['dane', 'skip', 'DANE_ZONE_INSECURE', host]), 'insecure', true],
      [report(['mx', 'fail', 'MX_DNSSEC_BOGUS']), 'bogus', true],
      // A verdict with the wrong status, two verdicts for one host, another host's verdict: no agreement.
      [report(['dane', 'warn', 'DANE_TLSA_MISMATCH', host]), 'mismatch', false],
      [
        report(['dane', 'pass', 'DANE_TLSA_MATCH', host], ['dane', 'fail', 'DANE_TLSA_MISMATCH', host]),
        'unknown',
        false,
      ],
      [report(['dane', 'pass', 'DANE_TLSA_MATCH', 'mx2.a.test']), 'unknown', false],
    ];
    for (const [r, verdict, statusOk] of cases) {
      const ours = ourVerdictOf(r, host);
      assert.equal(ours.verdict, verdict, JSON.stringify(r.findings));
      assert.equal(ours.statusOk, statusOk, JSON.stringify(r.findings));
    }
  });

  it('a missing tool fails the test with the Debian package to install', () => {
    assert.throws(
      () => requireCommand('mxguard-no-such-tool', 'mxguard-no-such-package'),
      /"mxguard-no-such-tool" is not installed: install the Debian package "mxguard-no-such-package"/,
    );
    assert.match(requireCommand('sh', 'dash'), /\/sh$/);
  });

  it('agreement: equal verdicts, or "no-dane" beside its two causes', () => {
    assert.ok(agree('verified', 'verified'));
    assert.ok(agree('no-dane', 'insecure') && agree('no-tlsa', 'no-dane'));
    assert.ok(!agree('insecure', 'no-tlsa'));
    assert.ok(!agree('mismatch', 'no-usable'));
    assert.ok(!agree('unknown', 'unknown'));
  });
});

describe('interop with a real DNSSEC lab (knotd + unbound), Postfix, posttls-finger and ldns-dane', () => {
  let pki: TestPki | undefined;
  let dns: DnssecLab | undefined;
  let mx: LabPostfix | undefined;
  let caFile = '';

  before(async () => {
    pki = TestPki.create('mxguard-interop-pki-');
    const root = pki.issue('interop-root', { subject: '/O=mxguard interop/CN=Lab Root CA' });
    const issuingCa = pki.issue('interop-ca', {
      subject: '/O=mxguard interop/CN=Lab Issuing CA',
      issuer: root,
      ca: true,
    });
    const certs: Certs = {
      issuingCa,
      // One leaf for every MX host: DANE-TA needs the MX name in the certificate (RFC 7672 §3.2.3).
      leaf: pki.issue('interop-mx', { issuer: issuingCa, sans: SCENARIOS.map((s) => s.host) }),
      otherKey: pki.issue('interop-other-key', { issuer: issuingCa, sans: ['mx.elsewhere.test'] }),
    };
    caFile = root.certPath;
    const [dnsLab, postfix] = await Promise.allSettled([
      startDnssecLab({ zones: SCENARIOS.flatMap((s) => zonesOf(s, certs)) }),
      startPostfix({
        domains: SCENARIOS.map((s) => s.domain),
        listeners: [
          { address: MX_LEAF_ONLY, keyPath: certs.leaf.key.path, chainPaths: [certs.leaf.certPath] },
          {
            address: MX_WITH_CHAIN,
            keyPath: certs.leaf.key.path,
            chainPaths: [certs.leaf.certPath, issuingCa.certPath],
          },
        ],
      }),
    ]);
    if (dnsLab.status === 'fulfilled') dns = dnsLab.value;
    if (postfix.status === 'fulfilled') mx = postfix.value;
    for (const started of [dnsLab, postfix]) if (started.status === 'rejected') throw started.reason;
  });

  after(async () => {
    await mx?.stop();
    await dns?.stop();
    pki?.remove();
  });

  it('DnsClient through unbound: AD on signed data, none on unsigned, SERVFAIL + EDE and CD on bogus', async () => {
    const lab = dns!;
    const client = new DnsClient({ servers: [lab.resolver], timeoutMs: 3000 });

    const validating = await client.checkValidating();
    assert.equal(validating.validating, true, 'the root DNSKEY should come back with AD');

    const signedA = await client.a('mx.ee-match.test');
    assert.equal(signedA.outcome, 'ok');
    assert.equal(signedA.secure, true);
    const signedTlsa = await client.tlsa('_25._tcp.mx.ee-match.test');
    assert.equal(signedTlsa.secure, true);
    assert.equal(signedTlsa.values.length, 1);
    assert.equal(signedTlsa.values[0]!.usage, 3);
    // A secure denial (NSEC) is secure too: that is what makes "no TLSA" trustworthy.
    const denied = await client.tlsa('_25._tcp.mx.no-tlsa.test');
    assert.equal(denied.outcome, 'nxdomain');
    assert.equal(denied.secure, true);

    const unsigned = await client.tlsa('_25._tcp.mx.unsigned.test');
    assert.equal(unsigned.outcome, 'ok');
    assert.equal(unsigned.values.length, 1);
    assert.equal(unsigned.secure, false);

    for (const [name, type] of [
      ['bogus-zone.test', 'MX'],
      ['_25._tcp.mx.bogus-tlsa.test', 'TLSA'],
    ] as const) {
      const result = await client.query(name, type);
      assert.equal(result.outcome, 'servfail', `${name} ${type}`);
      assert.ok(
        result.ede.some((e) => e.code === 6 || e.code === 9),
        `${name}: EDE 6 (DNSSEC Bogus) or 9 (DNSKEY Missing) expected, got ${JSON.stringify(result.ede)}`,
      );
      const classified = await client.classifyFailure(name, type);
      assert.equal(classified.verdict, 'bogus', name);
      assert.ok(
        classified.cdResult && ['ok', 'nodata'].includes(classified.cdResult.outcome),
        `${name} with CD`,
      );
    }

    // Safety: the lab root knows nothing of the real Internet, so a real name is a (secure) NXDOMAIN.
    const outside = await client.a('example.com');
    assert.equal(outside.outcome, 'nxdomain');
    assert.equal(outside.secure, true);

    // BIND's delv validates on its own from the lab trust anchor and must see the same.
    const expected: [string, string, string, boolean][] = [
      ['mx.ee-match.test', 'A', 'secure', signedA.secure],
      ['_25._tcp.mx.unsigned.test', 'TLSA', 'insecure', unsigned.secure],
      ['bogus-zone.test', 'MX', 'bogus', false],
      ['_25._tcp.mx.bogus-tlsa.test', 'TLSA', 'bogus', false],
    ];
    for (const [name, type, status, adFlag] of expected) {
      const verdict = await delv(lab, name, type);
      assert.equal(verdict.status, status, `delv ${name} ${type}:\n${verdict.output}`);
      assert.equal(verdict.status === 'secure', adFlag, `delv and the AD flag differ on ${name}`);
    }
  });

  it('every scenario: mxguard check agrees with posttls-finger and ldns-dane', async (t) => {
    const help = spawnSync(process.execPath, [BIN, 'check', '--help'], { encoding: 'utf8' });
    if (help.status !== 0) {
      throw new Error(
        `"${BIN} check --help" failed: build mxguard first (npx tsc -p tsconfig.json)\n${help.stderr}`,
      );
    }
    const lab = dns!;
    const results = await Promise.all(
      SCENARIOS.map(async (s) => {
        const [finger, ldns, ours] = await Promise.all([
          postTlsFinger(lab, s.domain),
          s.ldnsNotApplicable
            ? Promise.resolve(undefined)
            : starttlsChain(s.address, s.host).then((pem) => ldnsDane(lab, s.host, pem)),
          runMxguard(lab, s.domain, caFile),
        ]);
        return { s, finger, ldns, ours };
      }),
    );

    const cell = (v: OracleVerdict | undefined) => (v === undefined ? 'n/a' : v.verdict);
    const rows = [
      ['scenario', 'expected', 'posttls-finger', 'ldns-dane', 'mxguard', 'mxguard finding', 'agree'],
    ];
    const problems: string[] = [];
    for (const { s, finger, ldns, ours } of results) {
      const oracles = [finger, ldns].filter((v): v is OracleVerdict => v !== undefined);
      const agrees = oracles.every((o) => agree(o.verdict, ours.verdict)) && ours.statusOk;
      rows.push([
        s.title,
        s.expected,
        cell(finger),
        cell(ldns),
        ours.verdict,
        ours.evidence,
        agrees ? 'yes' : 'NO',
      ]);
      const where = `${s.title} (${s.domain})`;
      for (const [name, v] of [
        ['posttls-finger', finger],
        ['ldns-dane', ldns],
      ] as const) {
        if (v && !agree(v.verdict, s.expected)) {
          problems.push(`${where}: ${name} says ${v.verdict}, the lab meant ${s.expected}:\n${v.output}`);
        }
      }
      // Exit status (issue 3): 1 when any finding fails, 2 only when the check could not run.
      const failing = ['mismatch', 'no-usable', 'bogus'].includes(ours.verdict);
      if (ours.code === 2 || (failing && ours.code !== 1)) {
        problems.push(
          `${where}: mxguard exited ${ours.code} with a ${ours.verdict} verdict:\n${ours.output}`,
        );
      }
      if (!agrees || !agree(ours.verdict, s.expected)) {
        const said = oracles.map((o) => `${o.verdict} (${o.evidence})`).join(', ');
        problems.push(
          `${where}: mxguard says ${ours.verdict} [${ours.evidence}], oracles ${said}:\n${ours.output}`,
        );
      }
    }
    const notes = results
      .filter((r) => r.s.ldnsNotApplicable)
      .map((r) => `n/a for ldns-dane in "${r.s.title}": ${r.s.ldnsNotApplicable}`);
    notes.push('no-dane: posttls-finger does not say whether the zone is unsigned or has no TLSA records');
    for (const line of ['DANE agreement table', ...table(rows).split('\n'), ...notes]) t.diagnostic(line);
    assert.deepEqual(problems, [], `${problems.join('\n\n')}\n\n${lab.logs()}`);
  });
});

// The fuzz targets: one per parser of outside input, each with its seeds, a generator and the call under
// test. A new parser (the DMARC aggregate report parser, say) is one more entry in TARGETS: a name, its
// typed error class, seeds (corpus files and a few written here), a dictionary of its tokens, and `run`.
// Where a parser has a formatter, an accepted input is also formatted and parsed again: that must give
// the same value (a failure there counts as a crash: the formatter wrote what the parser refuses).
import { isDeepStrictEqual } from 'node:util';
import { gunzipSync, gzipSync } from 'node:zlib';
import dnsPacket, { type Answer, type PacketOpt } from 'dns-packet';
import { quoteTxt, selectVersionedRecord, splitTxt } from '../../src/common/txt.js';
import { DaneError } from '../../src/dane/error.js';
import { formatTlsa, parseTlsa, parseTlsaEntries, type TlsaRecord } from '../../src/dane/tlsa.js';
import { DkimError } from '../../src/dkim/error.js';
import { parseDkimKey } from '../../src/dkim/record.js';
import { DmarcError } from '../../src/dmarc/error.js';
import { formatDmarc, parseDmarc } from '../../src/dmarc/record.js';
import {
  decodeMessage,
  ednsOpt,
  extendedErrors,
  MAX_MESSAGE_SIZE,
  readReply,
  replyMatches,
} from '../../src/dns/wire.js';
import { MAX_POLICY_BYTES } from '../../src/fetch/policy.js';
import { MtaStsError } from '../../src/mtasts/error.js';
import { formatPolicy, parsePolicy } from '../../src/mtasts/policy.js';
import { formatStsRecord, parseStsRecord, selectStsRecord } from '../../src/mtasts/record.js';
import { type NetstringError, NetstringReader } from '../../src/policyd/netstring.js';
import { MAX_REQUEST_BYTES, normalizeKey, requestKey } from '../../src/policyd/socketmap.js';
import { SpfError } from '../../src/spf/error.js';
import { dnsLookupTerms, formatSpf, parseSpf, validateSpfExplanation } from '../../src/spf/record.js';
import { TlsRptError } from '../../src/tlsrpt/error.js';
import { decodeReports } from '../../src/tlsrpt/parse.js';
import { formatTlsRptRecord, parseTlsRptRecord } from '../../src/tlsrpt/record.js';
import { reportFromWire, reportToWire } from '../../src/tlsrpt/report.js';
import { dataLines, firstColumn } from './corpus.js';
import type { Corpus, FuzzTarget, Outcome } from './harness.js';
import { mutateBytes, mutateJson, mutateText, ODD_CHARS, randomString } from './mutate.js';
import type { Rng } from './random.js';

/** A property of the parser that must hold (a round trip, agreement of two ways of reading) did not. */
export class InvariantError extends Error {
  override readonly name = 'InvariantError';
}

function check(condition: boolean, message: string): void {
  if (!condition) throw new InvariantError(message);
}

/** Parse a record, then its formatted text: the same record must come back. Returns the record. */
function parsedAgain<R>(
  parse: (text: string) => { record: R },
  format: (record: R) => string,
  text: string,
): R {
  const { record } = parse(text);
  check(isDeepStrictEqual(parse(format(record)).record, record), 'parse(format(record)) differs from record');
  return record;
}

const utf8 = (b: Buffer) => b.toString('utf8');

/** A TXT record's text is at most a DNS message long (RFC 1035 §4.2.2: 65,535 octets over TCP). */
const TXT_MAX = MAX_MESSAGE_SIZE;

/**
 * A generator for text formats: mostly a mutated seed, sometimes a string of dictionary tokens, now and
 * then plain garbage.
 */
function textGenerator(seeds: readonly string[], dictionary: readonly string[]) {
  if (seeds.length === 0) throw new RangeError('a text target needs at least one seed');
  return (rng: Rng): string => {
    const roll = rng.int(100);
    if (roll < 2) return randomString(rng, 10);
    if (roll < 8) {
      let text = '';
      for (let n = rng.size(5); n >= 0; n--)
        text += rng.chance(0.8) ? rng.pick(dictionary) : rng.pick(ODD_CHARS);
      return text;
    }
    if (roll < 12) return rng.pick(seeds);
    return mutateText(rng, rng.pick(seeds), dictionary, seeds);
  };
}

/** Rows of the corpus's txt/records.tsv tagged "[<type>; ...]". */
function corpusRecords(corpus: Corpus, type: string): string[] {
  return firstColumn(corpus.files('txt', /^records\.tsv$/), (line) => line.includes(`[${type};`));
}

// ---------------------------------------------------------------------------------------------------------
// TLS-RPT report (RFC 8460 §4): reportFromWire on parsed JSON, decodeReports on JSON, gzip and email bytes

const TLSRPT_KEYS = [
  'organization-name',
  'date-range',
  'start-datetime',
  'end-datetime',
  'contact-info',
  'report-id',
  'policies',
  'policy',
  'policy-type',
  'policy-string',
  'policy-domain',
  'mx-host',
  'summary',
  'total-successful-session-count',
  'total-failure-session-count',
  'failure-details',
  'result-type',
  'sending-mta-ip',
  'receiving-mx-hostname',
  'receiving-mx-helo',
  'receiving-ip',
  'failed-session-count',
  'additional-information',
  'failure-reason-code',
];

const JSON_TOKENS = [
  '"',
  '{',
  '}',
  '[',
  ']',
  ',',
  ':',
  'null',
  'true',
  '-',
  '1e999',
  '-0',
  '\\u0000',
  '\\ud800',
  '\\"',
  '\\\\',
  '"sts"',
  '"tlsa"',
  '"no-policy-found"',
  '"certificate-expired"',
  ...TLSRPT_KEYS.map((k) => `"${k}"`),
];

const MINIMAL_REPORT = {
  'organization-name': 'Example',
  'date-range': { 'start-datetime': '2024-01-01T00:00:00Z', 'end-datetime': '2024-01-01T23:59:59Z' },
  'report-id': 'r1',
  policies: [
    {
      policy: { 'policy-type': 'no-policy-found', 'policy-domain': 'example.com' },
      summary: { 'total-successful-session-count': 1, 'total-failure-session-count': 0 },
    },
  ],
};

/** Report JSON texts from the corpus (plain and gzip files) and the fixture; the RFC-shaped minimum. */
function reportTexts(corpus: Corpus): string[] {
  const texts = corpus.files('tlsrpt', /\.json$/).map((f) => utf8(f.bytes));
  for (const f of corpus.files('tlsrpt', /\.gz$/)) {
    try {
      texts.push(utf8(gunzipSync(f.bytes)));
    } catch {
      // a corrupt seed is still a seed for the byte-level mutations of tlsrpt-decode
    }
  }
  texts.push(JSON.stringify(MINIMAL_REPORT));
  return texts;
}

function reportObjects(corpus: Corpus): unknown[] {
  return reportTexts(corpus).flatMap((t) => {
    try {
      return [JSON.parse(t) as unknown];
    } catch {
      return [];
    }
  });
}

/** A report as parsed JSON: a mutated tree mostly, sometimes the parse of mutated JSON text. */
function reportJsonGenerator(objects: readonly unknown[], texts: readonly string[]) {
  return (rng: Rng): unknown => {
    if (rng.chance(0.2)) {
      for (let tries = 0; tries < 3; tries++) {
        try {
          return JSON.parse(mutateText(rng, rng.pick(texts), JSON_TOKENS, texts));
        } catch {
          // not JSON any more: try another edit
        }
      }
    }
    return mutateJson(rng, rng.pick(objects), TLSRPT_KEYS);
  };
}

const reportObject: FuzzTarget<unknown> = {
  name: 'tlsrpt-report',
  about: 'src/tlsrpt/report.ts reportFromWire (parsed JSON) and the reportToWire round trip',
  format: 'json',
  isTypedError: (err) => err instanceof TlsRptError,
  setup(corpus) {
    const texts = reportTexts(corpus);
    return {
      generate: reportJsonGenerator(reportObjects(corpus), texts),
      run(json) {
        const { report } = reportFromWire(json);
        const again = reportFromWire(JSON.parse(JSON.stringify(reportToWire(report)))).report;
        // Compared as JSON: a count of -0 (JSON.parse gives it for "-0") comes back as 0, which is fine.
        check(
          JSON.stringify(again) === JSON.stringify(report),
          'reportFromWire(reportToWire(report)) differs from report',
        );
        return 'accepted';
      },
    };
  },
};

const MIME_TYPES = [
  'application/tlsrpt+gzip',
  'application/tlsrpt+json',
  'application/tlsrpt',
  'application/gzip',
  'application/x-gzip',
  'application/json',
  'APPLICATION/TLSRPT+GZIP',
  'application/zip',
  'application/octet-stream',
  'text/plain',
  'message/rfc822',
  'multipart/mixed',
  'application/tlsrpt+gzip; name="report.json.gz"',
  'application/tlsrpt+json; charset=utf-8',
  "application/tlsrpt+gzip; name*=utf-8''r%C3%A9port.json.gz",
  '',
];

/** RFC 8460 §5.3 email, with the header and MIME details varied: what mailparser and decodeEmail read. */
function reportEmail(rng: Rng, payloads: Buffer[]): Buffer {
  const eol = rng.chance(0.8) ? '\r\n' : '\n';
  const boundary = rng.chance(0.8)
    ? 'b0undary-42'
    : rng.pick(['=_Part_1', 'x', '', '"quoted boundary"', 'a'.repeat(80)]);
  const quoted = boundary.startsWith('"') ? boundary : `"${boundary}"`;
  const bare = boundary.replace(/"/g, '');
  const lines: string[] = [];
  if (rng.chance(0.05)) lines.push('From MAILER-DAEMON Thu May  2 06:00:00 2024');
  lines.push('From: tlsrpt@sender.example', 'To: tls-reports@receiver.example');
  lines.push(
    rng.chance(0.2)
      ? 'Subject: =?utf-8?B?UmVwb3J0IERvbWFpbjogcmVjZWl2ZXIuZXhhbXBsZQ==?='
      : 'Subject: Report Domain: receiver.example Submitter: sender.example',
  );
  lines.push('Date: Thu, 02 May 2024 06:00:00 +0000', 'MIME-Version: 1.0');
  if (rng.chance(0.8)) lines.push('TLS-Report-Domain: receiver.example');
  if (rng.chance(0.8)) lines.push('TLS-Report-Submitter: sender.example');
  lines.push(
    `Content-Type: ${rng.pick(['multipart/report', 'multipart/mixed', 'multipart/report', 'text/plain'])};${
      rng.chance(0.8) ? ' report-type=tlsrpt;' : ''
    }${eol} boundary=${rng.chance(0.7) ? quoted : bare}`,
  );
  lines.push('', 'This is a multipart message in MIME format.', '');
  lines.push(`--${bare}`, 'Content-Type: text/plain; charset=us-ascii', '', 'An aggregate TLS report.', '');
  for (const payload of payloads) {
    lines.push(`--${bare}`);
    // Mostly RFC 8460 §5.3's two types; the others are tolerated, skipped or odd.
    const type = rng.chance(0.7) ? rng.pick(MIME_TYPES.slice(0, 2)) : rng.pick(MIME_TYPES);
    if (type !== '') lines.push(`Content-Type: ${type}`);
    if (rng.chance(0.7)) {
      const name = rng.pick([
        'report.json.gz',
        'report.json',
        'r.gz',
        'report.txt',
        'é.json',
        '',
        'a'.repeat(300),
      ]);
      lines.push(`Content-Disposition: ${rng.pick(['attachment', 'inline', 'x'])}; filename="${name}"`);
    }
    const encoding = rng.chance(0.8)
      ? 'base64'
      : rng.pick(['7bit', '8bit', 'quoted-printable', 'binary', 'x-uue', 'BASE64', 'base64 ']);
    lines.push(`Content-Transfer-Encoding: ${encoding}`, '');
    if (encoding === 'base64' || encoding === 'x-uue') {
      const b64 = payload.toString('base64');
      // One joined string: a spread of 20,000 lines would overflow the stack.
      lines.push((b64.match(new RegExp(`.{1,${rng.pick([76, 64, 1000])}}`, 'g')) ?? []).join(eol));
    } else if (encoding === 'quoted-printable') {
      lines.push(
        payload.toString('latin1').replace(/[=\x00-\x08\x0b-\x1f\x7f-\xff]/g, (c) => {
          return `=${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`;
        }),
      );
    } else {
      lines.push(payload.toString('latin1'));
    }
    lines.push('');
  }
  if (rng.chance(0.9)) lines.push(`--${bare}--`, '');
  return Buffer.from(lines.join(eol), 'latin1');
}

const MiB = 1024 * 1024;

const reportBytes: FuzzTarget<Buffer> = {
  name: 'tlsrpt-decode',
  about: 'src/tlsrpt/parse.ts decodeReports on bytes: JSON, gzip, RFC 8460 §5.3 email',
  format: 'bytes',
  isTypedError: (err) => err instanceof TlsRptError,
  setup(corpus) {
    const texts = reportTexts(corpus);
    const json = reportJsonGenerator(reportObjects(corpus), texts);
    const raw = corpus.files('tlsrpt', /\.(json|gz|eml)$/).map((f) => f.bytes);
    // Made once, when first drawn: a gzip bomb (51 MiB of spaces, over the 50 MiB cap) and a report
    // whose organization-name is a 45 MiB string (issue 10's amplification upload).
    let bomb: Buffer | undefined;
    let bigOrg: Buffer | undefined;
    // `damage`: the chance of edits to the JSON text or the gzip bytes (less inside an email, so that
    // the email's own path is taken to its end often enough).
    const jsonBytes = (rng: Rng, damage = 0.3): Buffer => {
      let text = JSON.stringify(json(rng));
      if (text === undefined) text = '';
      if (rng.chance(damage)) text = mutateText(rng, text, JSON_TOKENS, texts);
      if (rng.chance(0.05)) text = rng.pick(['\ufeff', ' \n', '\t']) + text;
      return Buffer.from(text, 'utf8');
    };
    const gzipBytes = (rng: Rng, damage = 0.3): Buffer => {
      let body = gzipSync(jsonBytes(rng, damage), { level: 1 });
      if (rng.chance(0.05)) body = gzipSync(body, { level: 1 });
      if (rng.chance(0.05)) body = Buffer.concat([body, rng.chance(0.5) ? body : Buffer.from('garbage')]);
      return rng.chance(damage) ? mutateBytes(rng, body) : body;
    };
    return {
      generate(rng) {
        const roll = rng.int(10000);
        if (roll < 2) {
          bomb ??= gzipSync(Buffer.alloc(51 * MiB, 0x20));
          return bomb;
        }
        if (roll < 4) {
          bigOrg ??= gzipSync(
            JSON.stringify({ ...MINIMAL_REPORT, 'organization-name': 'A'.repeat(45 * MiB) }),
          );
          return bigOrg;
        }
        if (roll < 3500) return jsonBytes(rng);
        if (roll < 6000) return gzipBytes(rng);
        if (roll < 8500) {
          const payloads = Array.from({ length: rng.count(0.2, 4) - (rng.chance(0.05) ? 1 : 0) }, () =>
            rng.chance(0.7) ? gzipBytes(rng, 0.1) : jsonBytes(rng, 0.1),
          );
          const mail = reportEmail(rng, payloads);
          return rng.chance(0.15)
            ? Buffer.from(mutateText(rng, mail.toString('latin1'), []), 'latin1')
            : mail;
        }
        if (roll < 9700 && raw.length > 0) return mutateBytes(rng, rng.pick(raw), raw);
        const head = rng.pick([
          '',
          '{',
          '[',
          'PK\x03\x04',
          '\x1f\x8b',
          'From x\n',
          'Subject: x\n\n',
          '\ufeff{',
        ]);
        return Buffer.concat([Buffer.from(head, 'latin1'), Buffer.from(randomString(rng, 10), 'utf8')]);
      },
      async run(bytes): Promise<Outcome> {
        await decodeReports(bytes);
        return 'accepted';
      },
    };
  },
};

// ---------------------------------------------------------------------------------------------------------
// TXT records: _smtp._tls (RFC 8460 §3), _mta-sts (RFC 8461 §3.1), SPF, DMARC, DKIM

const tlsRptRecord: FuzzTarget<string> = {
  name: 'tlsrpt-record',
  maxInput: TXT_MAX,
  about: 'src/tlsrpt/record.ts parseTlsRptRecord, and the formatTlsRptRecord round trip',
  format: 'text',
  isTypedError: (err) => err instanceof TlsRptError,
  setup(corpus) {
    const seeds = [
      'v=TLSRPTv1; rua=mailto:tlsrpt@example.com',
      'v=TLSRPTv1;rua=https://reports.example.com/tlsrpt,mailto:a@example.com',
      'v=TLSRPTv1 ; rua=mailto:a@example.com!10m; ext-name=value;',
      'v=TLSRPTv1; rua=mailto:a%2Cb@example.com, https://x.example/?a=b#c',
      ...corpusRecords(corpus, '_smtp._tls'),
    ];
    const dictionary = [
      'v=TLSRPTv1',
      'rua=',
      'mailto:',
      'https://',
      'http://',
      '!',
      '10m',
      ',',
      ';',
      '@',
      '%2C',
      '%3B',
      'ext=',
      '?',
      '#',
      ' ',
    ];
    return {
      generate: textGenerator(seeds, dictionary),
      run(text) {
        parsedAgain(parseTlsRptRecord, formatTlsRptRecord, text);
        return 'accepted';
      },
    };
  },
};

const stsRecord: FuzzTarget<string> = {
  name: 'mtasts-record',
  maxInput: TXT_MAX,
  about: 'src/mtasts/record.ts parseStsRecord and selectStsRecord, and the formatStsRecord round trip',
  format: 'text',
  isTypedError: (err) => err instanceof MtaStsError,
  setup(corpus) {
    const seeds = [
      'v=STSv1; id=20190429T010101;',
      'v=STSv1;id=abc123',
      'v=STSv1 ; id=1; ext-name=value',
      ...corpusRecords(corpus, '_mta-sts'),
    ];
    const dictionary = [
      'v=STSv1',
      'id=',
      ';',
      ' ',
      '\t',
      'ext=',
      'x'.repeat(32),
      'x'.repeat(33),
      '20190429T010101',
    ];
    return {
      generate: textGenerator(seeds, dictionary),
      run(text) {
        selectStsRecord(text.split('\n'));
        parsedAgain(parseStsRecord, formatStsRecord, text);
        return 'accepted';
      },
    };
  },
};

/** SPF records out of the RFC 7208 test suite's YAML ("- SPF: ..." and "- TXT: ..." lines). */
function spfSuiteRecords(corpus: Corpus): string[] {
  const records: string[] = [];
  for (const line of dataLines(corpus.files('txt', /^spf-.*\.yml$/))) {
    const m = /^\s*-?\s*(?:SPF|TXT):\s*(.*)$/.exec(line);
    if (!m) continue;
    let value = m[1]!.trim();
    if (value.startsWith("'") && value.endsWith("'")) value = value.slice(1, -1).replace(/''/g, "'");
    else if (value.startsWith('"') && value.endsWith('"')) {
      value = value
        .slice(1, -1)
        .replace(/\\x([0-9a-fA-F]{2})/g, (_, h: string) => String.fromCharCode(Number.parseInt(h, 16)))
        .replace(/\\([\\"])/g, '$1');
    }
    records.push(value);
  }
  return records;
}

const spfRecord: FuzzTarget<string> = {
  name: 'spf-record',
  maxInput: TXT_MAX,
  about: 'src/spf/record.ts parseSpf, dnsLookupTerms, validateSpfExplanation, and the formatSpf round trip',
  format: 'text',
  isTypedError: (err) => err instanceof SpfError,
  setup(corpus) {
    const seeds = [
      'v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 include:_spf.example.com a mx/24 ptr -all',
      'v=spf1 exists:%{i}.%{l1r+-}._spf.%{d} a:%{d2}/24//64 redirect=_spf.example.com exp=explain.%{d}',
      'v=spf1 ?mx:mail.example.com//128 ~all moo=bar',
      ...firstColumn(corpus.files('spf', /\.tsv$/)),
      ...corpusRecords(corpus, 'spf'),
      ...spfSuiteRecords(corpus),
    ];
    const dictionary = [
      'v=spf1',
      ' ',
      'all',
      'include:',
      'a',
      'mx',
      'ptr',
      'ip4:',
      'ip6:',
      'exists:',
      'redirect=',
      'exp=',
      '%{',
      '%{s}',
      '%{l}',
      '%{o}',
      '%{d}',
      '%{i}',
      '%{p}',
      '%{v}',
      '%{h}',
      '%{c}',
      '%{r}',
      '%{t}',
      '%{ir}',
      '%{d2}',
      '%{l1r+-}',
      '%{d999999999999}',
      '%%',
      '%_',
      '%-',
      '/',
      '//',
      '/32',
      '/128',
      '/0',
      '/33',
      '::',
      '::ffff:',
      '-',
      '~',
      '?',
      '+',
      '.',
      '192.0.2.1',
      '2001:db8::1',
      '1.2.3.4.5',
      'example.com',
      '.example.com.',
    ];
    return {
      generate: textGenerator(seeds, dictionary),
      run(text) {
        try {
          validateSpfExplanation(text);
        } catch (err) {
          if (!(err instanceof SpfError)) throw err;
        }
        dnsLookupTerms(parsedAgain(parseSpf, formatSpf, text));
        return 'accepted';
      },
    };
  },
};

const dmarcRecord: FuzzTarget<string> = {
  name: 'dmarc-record',
  maxInput: TXT_MAX,
  about: 'src/dmarc/record.ts parseDmarc, and the formatDmarc round trip',
  format: 'text',
  isTypedError: (err) => err instanceof DmarcError,
  setup(corpus) {
    const seeds = [
      'v=DMARC1; p=reject; sp=quarantine; np=none; rua=mailto:a@example.com!10m,mailto:b@example.net; ruf=mailto:f@example.com; adkim=s; aspf=r; pct=50; fo=0:1:d:s; rf=afrf; ri=86400; psd=n; t=y',
      'v=DMARC1; p=none',
      ...firstColumn(corpus.files('dmarc', /\.tsv$/)),
      ...corpusRecords(corpus, '_dmarc'),
    ];
    const dictionary = [
      'v=DMARC1',
      'p=',
      'sp=',
      'np=',
      'rua=',
      'ruf=',
      'adkim=',
      'aspf=',
      'pct=',
      'fo=',
      'rf=',
      'ri=',
      'psd=',
      't=',
      'none',
      'quarantine',
      'reject',
      'mailto:',
      '!',
      '10m',
      '1g',
      '5t',
      '18446744073709551615',
      'k',
      'r',
      's',
      'y',
      'n',
      'u',
      ';',
      ',',
      '=',
      ':',
      'afrf',
      'iodef',
      '%20',
      '%',
      'https://',
      '@',
    ];
    return {
      generate: textGenerator(seeds, dictionary),
      run(text) {
        parsedAgain(parseDmarc, formatDmarc, text);
        return 'accepted';
      },
    };
  },
};

const dkimRecord: FuzzTarget<string> = {
  name: 'dkim-record',
  maxInput: TXT_MAX,
  about: 'src/dkim/record.ts parseDkimKey (tags, and the key in p= through createPublicKey)',
  format: 'text',
  isTypedError: (err) => err instanceof DkimError,
  setup(corpus) {
    const keys = dataLines(corpus.files('dkim', /\.tsv$/)).map((line) => line.split('\t'));
    const seeds = keys.map(([name = '', key = '']) => {
      const k = name.startsWith('ed25519') ? 'ed25519' : 'rsa';
      return `v=DKIM1; h=sha256; k=${k}; n=notes; s=email:tlsrpt; t=y:s; p=${key}`;
    });
    seeds.push('v=DKIM1; p=', 'v=DKIM1; k=rsa; t=s; p=MIIBIjANBgkq');
    const ders = keys.map(([, key = '']) => Buffer.from(key, 'base64'));
    const dictionary = [
      'v=DKIM1',
      'k=',
      'p=',
      'h=',
      'n=',
      's=',
      't=',
      'rsa',
      'ed25519',
      'sha256',
      'sha1',
      'email',
      '*',
      'tlsrpt',
      'y',
      's',
      ':',
      ';',
      '=',
      ' ',
      '\r\n\t',
      '==',
      '+/',
    ];
    const mutated = textGenerator(seeds, dictionary);
    return {
      generate(rng) {
        // A third of the time the key itself is damaged (DER edits, still valid base64), to reach createPublicKey.
        if (rng.chance(0.33) && ders.length > 0) {
          const der = mutateBytes(rng, rng.pick(ders), ders);
          return `v=DKIM1; k=${rng.pick(['rsa', 'ed25519'])}; p=${der.toString('base64')}`;
        }
        return mutated(rng);
      },
      run(text) {
        parseDkimKey(text);
        return 'accepted';
      },
    };
  },
};

// ---------------------------------------------------------------------------------------------------------
// MTA-STS policy file (RFC 8461 §3.2)

const stsPolicy: FuzzTarget<string> = {
  name: 'mtasts-policy',
  maxInput: MAX_POLICY_BYTES,
  about: 'src/mtasts/policy.ts parsePolicy (strict and not), and the formatPolicy round trip',
  format: 'text',
  isTypedError: (err) => err instanceof MtaStsError,
  setup(corpus) {
    const seeds = [
      'version: STSv1\nmode: enforce\nmx: mail.example.com\nmx: *.example.net\nmax_age: 604800\n',
      'version: STSv1\r\nmode: testing\r\nmx: mx1.example.com\r\nmax_age: 86400\r\next-name: some value\r\n',
      'version: STSv1\nmode: none\nmax_age: 31557600',
      ...corpus.files('mtasts', /\.txt$/).map((f) => utf8(f.bytes)),
    ];
    const dictionary = [
      'version: STSv1',
      'mode: enforce',
      'mode: testing',
      'mode: none',
      'mx: ',
      'max_age: ',
      '*.',
      '*.*.',
      'example.com',
      '\n',
      '\r\n',
      ': ',
      'STSv1',
      'ext: value',
      'x'.repeat(33),
      'version',
      'mode',
      'mx',
      'max_age',
    ];
    return {
      generate: textGenerator(seeds, dictionary),
      run(text) {
        let outcome: Outcome = 'rejected';
        for (const strict of [false, true]) {
          try {
            const { policy } = parsePolicy(text, { strict });
            const again = parsePolicy(formatPolicy(policy), { strict: true }).policy;
            check(
              isDeepStrictEqual(again, policy),
              `parse(format(policy)) differs from policy (strict: ${strict})`,
            );
            outcome = 'accepted';
          } catch (err) {
            if (!(err instanceof MtaStsError) || strict) throw err;
          }
        }
        return outcome;
      },
    };
  },
};

// ---------------------------------------------------------------------------------------------------------
// TLSA: presentation format (RFC 6698 §2.2, RFC 3597 generic form) and the DNS wire form (via dns-packet)

const HEX = '0123456789abcdef';

function hexString(rng: Rng, bytes: number): string {
  let text = '';
  for (let i = 0; i < bytes * 2; i++) text += HEX[rng.int(16)];
  return text;
}

const tlsaText: FuzzTarget<string> = {
  name: 'dane-tlsa',
  // What `mxguard records` and `mxguard tlsa` read: a record or a few zone-file lines, never near 64 KiB.
  maxInput: 64 * 1024,
  about:
    'src/dane/tlsa.ts parseTlsa and parseTlsaEntries (presentation format), and the formatTlsa round trip',
  format: 'text',
  isTypedError: (err) => err instanceof DaneError,
  setup(corpus) {
    const lines = dataLines(corpus.files('tlsa', /\.txt$/)).filter((l) => !l.startsWith(';') && /\d/.test(l));
    const seeds = [
      '3 1 1 0c72ac70b745ac19998811b131d662c9ac69dbdbe7cb23e5b514b56664c5d3d6',
      '_25._tcp.mx.example.com. 3600 IN TLSA 3 1 1 ( 0c72ac70b745ac19998811b131d662c9\n ac69dbdbe7cb23e5b514b56664c5d3d6 ) ; comment',
      '_25._tcp.mx.example.com. IN 1h30m TLSA DANE-EE SPKI SHA2-256 0c72ac70b745ac19998811b131d662c9ac69dbdbe7cb23e5b514b56664c5d3d6',
      'mx.example. TYPE52 \\# 35 0301010c72ac70b745ac19998811b131d662c9ac69dbdbe7cb23e5b514b56664c5d3d6',
      '2 0 0 3082010a',
      '3 1 2 ( cb861af6dded185ee04472a9092052ccc735120c34785e72c996c94b122eba6f\n329be630b1b4c6e2756e7a75392c21e253c6aeacc31fd45ff4595ded375faf62 )\n3 0 1 bedc04764cecae80aee454d332758f50847dca424216466e4012e0deae1f2e5f',
      ...lines,
      lines.join('\n'),
    ];
    const dictionary = [
      'TLSA',
      'IN',
      'CH',
      'TYPE52',
      'CLASS1',
      'CLASS255',
      '3600',
      '1h30m',
      '99999999999w',
      '\\#',
      '(',
      ')',
      '; c\n',
      '\n',
      '3',
      '2',
      '1',
      '0',
      '255',
      '256',
      'DANE-EE',
      'DANE-TA',
      'PKIX-TA',
      'PKIX-EE',
      'SPKI',
      'Cert',
      'SHA2-256',
      'SHA2-512',
      'Full',
      'PrivCert',
      'PrivSel',
      'PrivMatch',
      '_25._tcp.mx.example.com.',
      'ab',
      'ABCDEF0123456789',
    ];
    const mutated = textGenerator(seeds, dictionary);
    return {
      generate(rng) {
        if (rng.chance(0.1)) {
          const parts = [rng.int(256), rng.int(256), rng.pick([0, 1, 2, 255, rng.int(256)])];
          return `${parts.join(' ')} ${hexString(rng, rng.pick([0, 1, 31, 32, 33, 64, 65, rng.size(12)]))}`;
        }
        return mutated(rng);
      },
      run(text) {
        let entries: Array<{ record: TlsaRecord }> = [];
        let listed = true;
        try {
          entries = parseTlsaEntries(text);
        } catch (err) {
          if (!(err instanceof DaneError)) throw err;
          listed = false;
        }
        try {
          parseTlsa(text);
        } catch (err) {
          if (!(err instanceof DaneError)) throw err;
        }
        for (const { record } of entries) {
          check(
            isDeepStrictEqual(parseTlsa(formatTlsa(record)), record),
            'parseTlsa(formatTlsa(r)) differs from r',
          );
        }
        return listed ? 'accepted' : 'rejected';
      },
    };
  },
};

const TLSA_NAME = '_25._tcp.mx.example.com';

/** A DNS reply to a TLSA query: TLSA records, CNAMEs (some in loops), an OPT with Extended DNS Errors. */
function tlsaReply(rng: Rng): Buffer {
  const answers: Answer[] = [];
  let owner = TLSA_NAME;
  for (let n = rng.size(3); n > 0; n--) {
    if (rng.chance(0.2)) {
      const target = rng.chance(0.3) ? TLSA_NAME : `c${rng.int(4)}.example.net`;
      answers.push({ type: 'CNAME', name: owner, ttl: 300, data: target });
      owner = target;
    } else {
      const certificate = Buffer.from(hexString(rng, rng.pick([0, 1, 32, 64, rng.size(9)])), 'hex');
      const data = {
        usage: rng.pick([2, 3, rng.int(256)]),
        selector: rng.int(2),
        matchingType: rng.int(3),
        certificate,
      };
      answers.push({ type: 'TLSA', name: owner, ttl: rng.pick([0, 300, 2 ** 31]), data });
    }
  }
  // Option 15 is RFC 8914's Extended DNS Error: INFO-CODE (16 bits), then EXTRA-TEXT.
  const options = Array.from({ length: rng.int(3) }, () => {
    const data = Buffer.concat([Buffer.from([0, rng.int(30)]), Buffer.from(randomString(rng, 5), 'utf8')]);
    return { code: rng.chance(0.7) ? 15 : rng.int(65536), data: data.subarray(0, rng.size(7)) };
  }) as unknown as PacketOpt[];
  return dnsPacket.encode({
    type: 'response',
    id: rng.int(65536),
    flags: (rng.chance(0.5) ? dnsPacket.AUTHENTIC_DATA : 0) | rng.pick([0, 2, 3, 5]),
    questions: [{ type: 'TLSA', name: rng.chance(0.9) ? TLSA_NAME : 'other.example', class: 'IN' }],
    answers,
    additionals: [ednsOpt(false, options)],
  });
}

const tlsaWire: FuzzTarget<Buffer> = {
  name: 'dane-tlsa-wire',
  maxInput: MAX_MESSAGE_SIZE,
  about:
    'src/dns/wire.ts decodeMessage, replyMatches, readReply (CNAME chain, EDE) on TLSA replies, read as src/dns/resolver.ts does',
  format: 'bytes',
  // Nothing here may throw: a malformed message is `undefined`, a bad chain an outcome.
  isTypedError: () => false,
  setup() {
    return {
      generate(rng) {
        const reply = tlsaReply(rng);
        return rng.chance(0.7) ? mutateBytes(rng, reply) : reply;
      },
      run(bytes) {
        const message = decodeMessage(bytes);
        if (message === undefined) return 'rejected';
        replyMatches(message, { id: message.id ?? 0, name: TLSA_NAME, type: 'TLSA' });
        extendedErrors(message);
        const summary = readReply(message, TLSA_NAME, 'TLSA');
        for (const r of summary.answers) {
          if (r.type !== 'TLSA') continue;
          // src/dns/resolver.ts tlsa(): the fields a TlsaRecord is made of.
          const { usage, selector, matchingType, certificate } = r.data;
          check(
            [usage, selector, matchingType].every((v) => Number.isInteger(v) && v >= 0 && v <= 255),
            `a TLSA answer with fields ${usage} ${selector} ${matchingType}`,
          );
          check(Buffer.isBuffer(certificate), 'a TLSA answer without certificate data');
          formatTlsa({ usage, selector, matchingType, data: certificate });
        }
        return 'accepted';
      },
    };
  },
};

// ---------------------------------------------------------------------------------------------------------
// Postfix socketmap: netstring framing, and the request key reduced to a domain

/** Netstrings carrying socketmap requests, with lengths sometimes off by one. */
function netstrings(rng: Rng, requests: readonly string[]): Buffer {
  const parts: Buffer[] = [];
  for (let n = rng.size(3); n >= 0; n--) {
    const payload = rng.chance(0.8)
      ? Buffer.from(rng.pick(requests), 'utf8')
      : Buffer.from(randomString(rng, rng.pick([4, 11])), 'utf8');
    const length = payload.length + (rng.chance(0.1) ? rng.pick([-1, 1]) : 0);
    parts.push(Buffer.from(`${length}:`), payload, Buffer.from(rng.chance(0.95) ? ',' : ';'));
  }
  return Buffer.concat(parts);
}

const REQUESTS = [
  'postfix example.com',
  'postfix Example.COM.',
  'postfix [mx.example.com]:25',
  'postfix mx.example.com:587',
  'postfix [192.0.2.1]',
  'postfix [ipv6:2001:db8::1]:25',
  'postfix .example.com',
  'postfix bücher.example',
  'postfix xn--bcher-kva.example',
  `postfix ${'a'.repeat(64)}.example`,
  `postfix ${`${'a'.repeat(63)}.`.repeat(4)}com`,
  'postfix localhost',
  'postfix *.example.com',
  'postfix ex ample.com',
  'tlspolicy example.org',
  `${'n'.repeat(64)} example.com`,
  `${'n'.repeat(65)} example.com`,
  ' example.com',
  'postfix ',
  'postfix',
];

interface Parsed {
  strings: string[];
  error: NetstringError | undefined;
  buffered: number;
}

/** Read `bytes` whole, or in pieces of the given sizes with the handler pausing every third string. */
function readNetstrings(bytes: Buffer, pieces?: readonly number[]): Parsed {
  const reader = new NetstringReader(MAX_REQUEST_BYTES);
  const strings: string[] = [];
  let paused = false;
  const handler = (b: Buffer, start: number, end: number) => {
    strings.push(b.toString('latin1', start, end));
    paused = pieces !== undefined && strings.length % 3 === 0;
    return !paused;
  };
  if (!pieces) return { strings, error: reader.feed(bytes, handler), buffered: reader.buffered };
  let at = 0;
  let piece = 0;
  while (at < bytes.length) {
    const size = Math.max(1, pieces[piece++ % pieces.length]!);
    // A reused read buffer, as src/policyd/server.ts has: the reader must not keep it.
    const chunk = Buffer.alloc(size + 3, 0xee);
    bytes.copy(chunk, 0, at, at + size);
    let error = reader.feed(chunk, handler, Math.min(size, bytes.length - at));
    chunk.fill(0xdd);
    while (error === undefined && paused) {
      paused = false;
      error = reader.resume(handler);
    }
    if (error !== undefined) return { strings, error, buffered: reader.buffered };
    at += size;
  }
  return { strings, error: undefined, buffered: reader.buffered };
}

const netstring: FuzzTarget<Buffer> = {
  name: 'netstring',
  about:
    'src/policyd/netstring.ts NetstringReader: whole input against the same bytes in pieces, with pauses',
  format: 'bytes',
  isTypedError: () => false,
  setup() {
    return {
      generate(rng) {
        const bytes = netstrings(rng, REQUESTS);
        return rng.chance(0.5) ? mutateBytes(rng, bytes) : bytes;
      },
      run(bytes) {
        const whole = readNetstrings(bytes);
        const sizes = [1 + (bytes.length % 7), 1, 2 + (bytes.length % 13), 64, 3];
        const pieces = readNetstrings(bytes, sizes);
        // The pieces are read up to the first error only, and its pending bytes differ from there on.
        check(isDeepStrictEqual(pieces.strings, whole.strings), 'strings differ when read in pieces');
        check(pieces.error === whole.error, `error ${pieces.error} in pieces, ${whole.error} whole`);
        if (whole.error === undefined) check(pieces.buffered === whole.buffered, 'different bytes left over');
        return whole.error === undefined ? 'accepted' : 'rejected';
      },
    };
  },
};

const socketmap: FuzzTarget<Buffer> = {
  name: 'socketmap',
  maxInput: 4 * MAX_REQUEST_BYTES,
  about: 'src/policyd/socketmap.ts requestKey and normalizeKey on a request payload',
  format: 'bytes',
  isTypedError: () => false,
  setup() {
    const dictionary = [
      'postfix ',
      '.',
      '[',
      ']',
      ':25',
      ':',
      'xn--',
      'ipv6:',
      '*.',
      'ß',
      'İ',
      '\u3002',
      '%',
      '\0',
    ];
    const texts = textGenerator(REQUESTS, dictionary);
    return {
      generate(rng) {
        const text = texts(rng);
        const roll = rng.int(10);
        if (roll < 6) return Buffer.from(text, 'utf8');
        if (roll < 8) return Buffer.from(text, 'latin1');
        return mutateBytes(rng, Buffer.from(text, 'utf8'));
      },
      run(bytes) {
        const key = requestKey(bytes, 0, bytes.length);
        if (key === undefined) return 'rejected';
        const result = normalizeKey(key);
        if ('notFound' in result) return 'rejected';
        const domain = result.domain;
        check(/^[\x21-\x7e]+$/.test(domain), `domain "${domain}" has characters outside printable ASCII`);
        check(domain === domain.toLowerCase(), `domain "${domain}" is not lower case`);
        check(
          domain.includes('.') && !domain.endsWith('.'),
          `domain "${domain}" is one label or ends in "."`,
        );
        return 'accepted';
      },
    };
  },
};

// ---------------------------------------------------------------------------------------------------------
// TXT helpers: picking the versioned record, splitting into <=255-octet strings

const txt: FuzzTarget<string> = {
  name: 'txt',
  maxInput: TXT_MAX,
  about: 'src/common/txt.ts selectVersionedRecord, splitTxt, quoteTxt',
  format: 'text',
  isTypedError: () => false,
  setup(corpus) {
    const seeds = [
      'v=STSv1; id=1',
      'v=TLSRPTv1; rua=mailto:a@example.com',
      `v=spf1 ${'ip4:192.0.2.1 '.repeat(40)}-all`,
      ...corpusRecords(corpus, '_mta-sts'),
      ...corpusRecords(corpus, '_smtp._tls'),
    ];
    const generate = textGenerator(seeds, [
      'v=STSv1',
      'v=TLSRPTv1',
      ';',
      ' ',
      '\t',
      '\n',
      'é',
      '😀',
      '\ud800',
    ]);
    return {
      generate,
      run(text) {
        for (const max of [4, 255]) {
          const parts = splitTxt(text, max);
          check(parts.join('') === text, 'splitTxt parts do not join to the value');
          check(
            parts.every((p) => Buffer.byteLength(p, 'utf8') <= max),
            `a splitTxt part is over ${max} octets`,
          );
        }
        check(quoteTxt(text).length >= text.length, 'quoteTxt lost characters');
        const records = text.split('\n');
        for (const version of ['v=STSv1', 'v=TLSRPTv1']) {
          const selection = selectVersionedRecord(records, version);
          const kept =
            selection.kind === 'one' ? 1 : selection.kind === 'many' ? selection.records.length : 0;
          check(kept + selection.ignored.length === records.length, 'selectVersionedRecord lost records');
        }
        return 'accepted';
      },
    };
  },
};

/** Every target, in the order a full run takes them. */
export const TARGETS: readonly FuzzTarget<unknown>[] = [
  reportObject,
  reportBytes,
  tlsRptRecord,
  stsPolicy,
  stsRecord,
  spfRecord,
  dmarcRecord,
  dkimRecord,
  tlsaText,
  tlsaWire,
  netstring,
  socketmap,
  txt,
] as FuzzTarget<unknown>[];

// decodeDmarcReports: XML, gzip, zip and e-mail input (RFC 7489 §7.2.1.1, Appendix C; RFC 9990), the
// fields read, hostile input (zip and gzip bombs, archive tricks, DTDs, huge values) refused with named
// errors and bounded memory, reportKindOf, and only-typed-errors fuzzing.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { describe, test } from 'node:test';
import { createGzip, gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { DmarcError } from '../../src/dmarc/error.js';
import { decodeDmarcReports, decodeIfDmarc, isDmarcInput, reportKindOf } from '../../src/dmarc/parse.js';
import { MAX_XML_DEPTH, MAX_XML_ELEMENTS, MAX_XML_TEXT } from '../../src/dmarc/xml.js';
import {
  dmarcEmail,
  EXPECTED_REPORT,
  RECORD_1,
  RECORD_2,
  reportXml,
  XML,
  ZIP,
  zipOf,
} from '../fixtures/dmarc/reports.js';
import { reportEmail, reportGzip as tlsRptGzip, reportJson as tlsRptJson } from '../fixtures/tlsrpt/build.js';

async function errorOf(promise: Promise<unknown>): Promise<DmarcError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof DmarcError, `expected DmarcError, got ${err}`);
    return err;
  }
  assert.fail('expected a DmarcError');
}

describe('decodeDmarcReports: formats', () => {
  test('XML: every field read', async () => {
    const { reports, warnings } = await decodeDmarcReports(XML);
    assert.deepEqual(reports, [EXPECTED_REPORT]);
    assert.deepEqual(warnings, []);
  });

  test('XML with a BOM, no declaration, CRLF and tabs', async () => {
    const text = reportXml({ prolog: '' }).replace(/\n/g, '\r\n').replace(/ {2}/g, '\t');
    const { reports } = await decodeDmarcReports(
      Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(text)]),
    );
    assert.deepEqual(reports, [EXPECTED_REPORT]);
  });

  test('gzip and zip give the same report', async () => {
    assert.deepEqual((await decodeDmarcReports(gzipSync(XML))).reports, [EXPECTED_REPORT]);
    assert.deepEqual((await decodeDmarcReports(ZIP)).reports, [EXPECTED_REPORT]);
    const stored = zipOf([{ name: 'r.xml', content: XML, method: 0 }]);
    assert.deepEqual((await decodeDmarcReports(stored)).reports, [EXPECTED_REPORT]);
  });

  test('RFC 9990: namespace, np, no pct, disposition "pass" read as none with a warning', async () => {
    const bis = reportXml()
      .replace('<feedback>', '<feedback xmlns="urn:ietf:params:xml:ns:dmarc-2.0">')
      .replace(
        '<pct>50</pct>',
        '<np>reject</np><testing>n</testing><discovery_method>treewalk</discovery_method>',
      )
      .replace('<disposition>none</disposition>', '<disposition>pass</disposition>');
    const { reports, warnings } = await decodeDmarcReports(Buffer.from(bis));
    const { pct: _pct, ...policy } = EXPECTED_REPORT.policyPublished;
    assert.deepEqual(reports[0]!.policyPublished, { ...policy, np: 'reject' });
    assert.equal(reports[0]!.records[0]!.disposition, 'none');
    assert.deepEqual(
      warnings.map((w) => w.code),
      ['DMARC_REPORT_DISPOSITION_PASS'],
    );
  });

  for (const [type, filename, content] of [
    ['application/gzip', 'r.xml.gz', gzipSync(XML)],
    ['application/x-gzip', undefined, gzipSync(XML)],
    ['application/zip', 'r.zip', ZIP],
    ['application/x-zip-compressed', 'r.zip', ZIP],
    ['text/xml', 'r.xml', XML],
    ['application/xml', undefined, XML],
    ['application/octet-stream', 'receiver.example!example.com!1714521600!1714607999.xml.gz', gzipSync(XML)],
    ['application/octet-stream', undefined, ZIP],
  ] as const) {
    test(`e-mail with a ${type} attachment${filename ? ` named ${filename}` : ''}`, async () => {
      const mail = dmarcEmail([{ type, ...(filename ? { filename } : {}), content }]);
      const { reports, warnings } = await decodeDmarcReports(mail);
      assert.deepEqual(reports, [EXPECTED_REPORT]);
      assert.deepEqual(warnings, []);
      assert.equal(await reportKindOf(mail), 'dmarc');
    });
  }

  test('e-mail with two reports gives both; other parts are skipped', async () => {
    const second = Buffer.from(reportXml({ records: RECORD_2 }).replace('r-2024-05-01-42', 'second'));
    const mail = dmarcEmail([
      { type: 'application/gzip', filename: 'a.xml.gz', content: gzipSync(XML) },
      { type: 'image/png', filename: 'logo.png', content: Buffer.from('not a report') },
      { type: 'application/zip', filename: 'b.zip', content: zipOf([{ name: 'b.xml', content: second }]) },
    ]);
    const { reports } = await decodeDmarcReports(mail);
    assert.deepEqual(
      reports.map((r) => [r.reportId, r.records.length]),
      [
        ['r-2024-05-01-42', 2],
        ['second', 1],
      ],
    );
  });

  test('e-mail without a report: DMARC_EMAIL_NO_REPORT naming the parts', async () => {
    const mail = dmarcEmail([{ type: 'image/png', filename: 'logo.png', content: Buffer.from('png') }]);
    const err = await errorOf(decodeDmarcReports(mail));
    assert.equal(err.code, 'DMARC_EMAIL_NO_REPORT');
    assert.match(err.message, /image\/png/);
  });

  test('an error inside an attachment says which attachment', async () => {
    const mail = dmarcEmail([
      { type: 'application/gzip', filename: 'bad.xml.gz', content: gzipSync('<feedback>') },
    ]);
    const err = await errorOf(decodeDmarcReports(mail));
    assert.equal(err.code, 'DMARC_REPORT_BAD_XML');
    assert.match(err.message, /^attachment 1 \(bad\.xml\.gz\)/);
  });
});

describe('decodeDmarcReports: quirks read with a warning', () => {
  test('unknown elements, stray text, empty reason, empty org_name, bad UTF-8', async () => {
    const text = reportXml({
      orgName: '',
      records: RECORD_1.replace('<row>', '<row><vendor_score>7</vendor_score>').replace(
        '</policy_evaluated>',
        '<reason><type></type><comment/></reason></policy_evaluated>',
      ),
    }).replace('<p>quarantine</p>', '<p>quarantine</p>stray');
    const bytes = Buffer.from(text.replace('esp.example', 'esp\u00e9.example'), 'utf8');
    const bad = Buffer.from(bytes.toString('latin1').replace('esp\xc3\xa9', 'esp\x91'), 'latin1');
    const { reports, warnings } = await decodeDmarcReports(bad);
    assert.equal(reports[0]!.records[0]!.dkimResults[1]!.domain, 'esp\ufffd.example');
    assert.deepEqual(reports[0]!.records[0]!.reasons, []);
    assert.deepEqual(warnings.map((w) => w.code).sort(), [
      'DMARC_REPORT_BAD_UTF8',
      'DMARC_REPORT_EMPTY_FIELD',
      'DMARC_REPORT_EMPTY_REASON',
      'DMARC_REPORT_STRAY_TEXT',
      'DMARC_REPORT_UNKNOWN_ELEMENT',
    ]);
  });

  test('the policy domain and header From are lower-cased (RFC 4343)', async () => {
    const xml = reportXml().replace('<domain>example.com</domain>', '<domain>Example.COM</domain>');
    const { reports } = await decodeDmarcReports(
      Buffer.from(xml.replace(/<header_from>example\.com/g, '<header_from>EXAMPLE.com')),
    );
    assert.equal(reports[0]!.domain, 'example.com');
    assert.equal(reports[0]!.policyPublished.domain, 'example.com');
    assert.deepEqual(
      reports[0]!.records.map((r) => r.headerFrom),
      ['example.com', 'example.com'],
    );
  });

  test('<identities> of early drafts is read as <identifiers>', async () => {
    const xml = reportXml({ records: RECORD_2.replace(/identifiers>/g, 'identities>') });
    const { reports, warnings } = await decodeDmarcReports(Buffer.from(xml));
    assert.equal(reports[0]!.records[0]!.headerFrom, 'example.com');
    assert.deepEqual(
      warnings.map((w) => [w.code, w.where]),
      [['DMARC_REPORT_OLD_DRAFT', 'record 1']],
    );
  });

  test('entities and character references are replaced (XML 1.0 §4.1, §4.6)', async () => {
    const xml = reportXml({ orgName: 'A&#x41;&#66; &amp; &lt;C&gt; &quot;D&apos;' });
    const { reports } = await decodeDmarcReports(Buffer.from(xml));
    assert.equal(reports[0]!.organization, 'AAB & <C> "D\'');
  });

  test('a Latin-1 declaration is honoured', async () => {
    const text = reportXml({
      orgName: 'Caf\u00e9 Mail',
      prolog: '<?xml version="1.0" encoding="ISO-8859-1"?>',
    });
    const { reports, warnings } = await decodeDmarcReports(Buffer.from(text, 'latin1'));
    assert.equal(reports[0]!.organization, 'Caf\u00e9 Mail');
    assert.deepEqual(warnings, []);
  });

  test('upper-cased enumerated values are refused (RFC 7489 Appendix C spells them in lower case)', async () => {
    const err = await errorOf(
      decodeDmarcReports(Buffer.from(reportXml().replace('<dkim>pass</dkim>', '<dkim>Pass</dkim>'))),
    );
    assert.equal(err.code, 'DMARC_REPORT_BAD_VALUE');
    assert.match(err.message, /record 1\/row\/policy_evaluated: <dkim> is "Pass"/);
  });
});

describe('decodeDmarcReports: refused input', () => {
  const cases: Array<[string, string | Buffer, string]> = [
    ['empty input', '', 'DMARC_REPORT_EMPTY'],
    ['only whitespace', ' \r\n\t', 'DMARC_REPORT_EMPTY'],
    ['plain text', 'hello, this is not a report', 'DMARC_REPORT_NOT_A_REPORT'],
    ['a TLS-RPT report', tlsRptJson, 'DMARC_REPORT_NOT_A_REPORT'],
    ['HTML', '<html><body>hi</body></html>', 'DMARC_REPORT_NOT_A_REPORT'],
    ['XML that is not well-formed', reportXml().replace('</org_name>', '</orgname>'), 'DMARC_REPORT_BAD_XML'],
    ['no report_id', reportXml().replace(/<report_id>.*<\/report_id>/, ''), 'DMARC_REPORT_MISSING_FIELD'],
    [
      'no policy domain',
      reportXml().replace('<domain>example.com</domain>\n    <adkim>', '<adkim>'),
      'DMARC_REPORT_MISSING_FIELD',
    ],
    [
      'a count that is not a number',
      reportXml().replace('<count>12</count>', '<count>-1</count>'),
      'DMARC_REPORT_BAD_VALUE',
    ],
    [
      'a date that is not Unix seconds',
      reportXml().replace('<begin>1714521600</begin>', '<begin>2024-05-01</begin>'),
      'DMARC_REPORT_BAD_VALUE',
    ],
    [
      'an org_name over 256 characters',
      reportXml({ orgName: 'o'.repeat(257) }),
      'DMARC_REPORT_FIELD_TOO_LONG',
    ],
    [
      'corrupt gzip',
      Buffer.concat([gzipSync(XML).subarray(0, 40), Buffer.alloc(40, 0x55)]),
      'DMARC_REPORT_BAD_GZIP',
    ],
    ['gzip inside gzip', gzipSync(gzipSync(XML)), 'DMARC_REPORT_NOT_A_REPORT'],
  ];
  for (const [name, input, code] of cases) {
    test(`${name}: ${code}`, async () => {
      const err = await errorOf(decodeDmarcReports(Buffer.from(input)));
      assert.equal(err.code, code, err.message);
    });
  }

  test('an invalid option is a RangeError', async () => {
    await assert.rejects(decodeDmarcReports(XML, { maxDecompressedBytes: 0 }), RangeError);
  });
});

describe('decodeDmarcReports: hostile archives', () => {
  test('zip with two files: DMARC_ZIP_ENTRIES', async () => {
    const two = zipOf([
      { name: 'a.xml', content: XML },
      { name: 'b.xml', content: XML },
    ]);
    assert.equal((await errorOf(decodeDmarcReports(two))).code, 'DMARC_ZIP_ENTRIES');
    // The same, with the end record claiming one entry.
    const hidden = zipOf(
      [
        { name: 'a.xml', content: XML },
        { name: 'b.xml', content: XML },
      ],
      { entryCount: 1 },
    );
    assert.equal((await errorOf(decodeDmarcReports(hidden))).code, 'DMARC_ZIP_ENTRIES');
    // And an end record counting two entries where the directory has one.
    const counted = zipOf([{ name: 'a.xml', content: XML }], { entryCount: 2 });
    assert.equal((await errorOf(decodeDmarcReports(counted))).code, 'DMARC_ZIP_ENTRIES');
    // An empty archive has no local header, so it does not even start like a zip.
    assert.equal((await errorOf(decodeDmarcReports(zipOf([])))).code, 'DMARC_REPORT_NOT_A_REPORT');
  });

  for (const name of [
    '../x.xml',
    'reports/../../x.xml',
    '/etc/x.xml',
    'C:\\x.xml',
    'c:x.xml',
    'dir\\x.xml',
    'folder/',
  ]) {
    test(`zip entry named ${JSON.stringify(name)}: DMARC_ZIP_PATH`, async () => {
      const err = await errorOf(decodeDmarcReports(zipOf([{ name, content: XML }])));
      assert.equal(err.code, 'DMARC_ZIP_PATH');
    });
  }

  test('the local header is checked too: a path trick or encryption only there is refused', async () => {
    const localPath = zipOf([{ name: 'r.xml', localName: '../r.xml', content: XML }]);
    assert.equal((await errorOf(decodeDmarcReports(localPath))).code, 'DMARC_ZIP_PATH');
    const localEncrypted = zipOf([{ name: 'r.xml', localFlags: 1, content: XML }]);
    assert.equal((await errorOf(decodeDmarcReports(localEncrypted))).code, 'DMARC_ZIP_ENCRYPTED');
    const centralPath = zipOf([{ name: '../r.xml', localName: 'r.xml', content: XML }]);
    assert.equal((await errorOf(decodeDmarcReports(centralPath))).code, 'DMARC_ZIP_PATH');
    const centralEncrypted = zipOf([{ name: 'r.xml', flags: 1, localFlags: 0, content: XML }]);
    assert.equal((await errorOf(decodeDmarcReports(centralEncrypted))).code, 'DMARC_ZIP_ENCRYPTED');
  });

  test('encrypted entry: DMARC_ZIP_ENCRYPTED; bzip2: DMARC_ZIP_METHOD; bad CRC: DMARC_ZIP_BAD', async () => {
    const encrypted = zipOf([{ name: 'r.xml', content: XML, flags: 1 }]);
    assert.equal((await errorOf(decodeDmarcReports(encrypted))).code, 'DMARC_ZIP_ENCRYPTED');
    const bzip2 = zipOf([{ name: 'r.xml', content: XML, method: 12 }]);
    assert.equal((await errorOf(decodeDmarcReports(bzip2))).code, 'DMARC_ZIP_METHOD');
    const badCrc = zipOf([{ name: 'r.xml', content: XML, crc: 1234 }]);
    assert.equal((await errorOf(decodeDmarcReports(badCrc))).code, 'DMARC_ZIP_BAD');
    assert.equal((await errorOf(decodeDmarcReports(ZIP.subarray(0, ZIP.length - 30)))).code, 'DMARC_ZIP_BAD');
  });

  test('zip bomb: refused by its declared size, and while inflating when it lies, with bounded memory', async () => {
    const zeros = Buffer.alloc(64 * 1024 * 1024);
    const honest = zipOf([{ name: 'bomb.xml', content: zeros }]);
    const liar = zipOf([{ name: 'bomb.xml', content: zeros, declaredSize: 1000 }]);
    assert.ok(honest.length < 200_000, `the bomb is small: ${honest.length} bytes`);
    const before = process.resourceUsage().maxRSS;
    const declared = await errorOf(decodeDmarcReports(honest));
    assert.equal(declared.code, 'DMARC_REPORT_TOO_LARGE');
    assert.match(declared.message, /declares 67108864 bytes/);
    const inflating = await errorOf(decodeDmarcReports(liar));
    assert.equal(inflating.code, 'DMARC_REPORT_TOO_LARGE');
    assert.match(inflating.message, /inflates to more than/);
    // maxRSS is the peak (KiB): inflating all 64 MiB would raise it by that much at least. Loose bound.
    const growthMiB = (process.resourceUsage().maxRSS - before) / 1024;
    assert.ok(growthMiB < 48, `peak RSS grew by ${growthMiB.toFixed(1)} MiB`);
  });

  test('gzip bomb (1 GiB of spaces): refused while inflating, with bounded memory', async () => {
    const gz = createGzip({ level: 9 });
    const chunks: Buffer[] = [];
    gz.on('data', (c: Buffer) => chunks.push(c));
    const ended = once(gz, 'end');
    gz.write('<?xml version="1.0"?><feedback>');
    const chunk = Buffer.alloc(1024 * 1024, 0x20);
    for (let i = 0; i < 1024; i++) if (!gz.write(chunk)) await once(gz, 'drain');
    gz.end();
    await ended;
    const bomb = Buffer.concat(chunks);
    const before = process.resourceUsage().maxRSS;
    const err = await errorOf(decodeDmarcReports(bomb));
    assert.equal(err.code, 'DMARC_REPORT_TOO_LARGE');
    const growthMiB = (process.resourceUsage().maxRSS - before) / 1024;
    assert.ok(growthMiB < 100, `peak RSS grew by ${growthMiB.toFixed(1)} MiB`);
  });

  test('an e-mail whose attachments together inflate past the cap is refused', async () => {
    const xml = reportXml({ records: RECORD_1.repeat(300) });
    const big = gzipSync(xml);
    const mail = dmarcEmail([
      { type: 'application/gzip', filename: 'a.xml.gz', content: big },
      { type: 'application/gzip', filename: 'b.xml.gz', content: big },
    ]);
    // Each attachment fits the cap alone; both together do not.
    const cap = Math.floor(Buffer.byteLength(xml) * 1.5);
    const err = await errorOf(decodeDmarcReports(mail, { maxDecompressedBytes: cap }));
    assert.equal(err.code, 'DMARC_REPORT_TOO_LARGE');
    assert.match(err.message, /^attachment 2 \(b\.xml\.gz\).*for all the attachments together/);
  });
});

describe('decodeDmarcReports: hostile XML', () => {
  test('billion laughs: DMARC_REPORT_DTD before any expansion', async () => {
    const laughs = [
      '<?xml version="1.0"?>',
      '<!DOCTYPE feedback [',
      ' <!ENTITY lol "lol">',
      ...Array.from({ length: 9 }, (_, i) => ` <!ENTITY lol${i + 1} "${`&lol${i || ''};`.repeat(10)}">`),
      ']>',
      '<feedback><report_metadata><org_name>&lol9;</org_name></report_metadata></feedback>',
    ].join('\n');
    const err = await errorOf(decodeDmarcReports(Buffer.from(laughs)));
    assert.equal(err.code, 'DMARC_REPORT_DTD');
  });

  test('external entity (XXE): DMARC_REPORT_DTD', async () => {
    const xxe = reportXml({
      prolog: '<?xml version="1.0"?>\n<!DOCTYPE feedback [ <!ENTITY xxe SYSTEM "file:///etc/passwd"> ]>',
      orgName: '&xxe;',
    });
    const err = await errorOf(decodeDmarcReports(Buffer.from(xxe)));
    assert.equal(err.code, 'DMARC_REPORT_DTD');
    // Also inside a gzip and a zip.
    assert.equal((await errorOf(decodeDmarcReports(gzipSync(xxe)))).code, 'DMARC_REPORT_DTD');
    assert.equal(
      (await errorOf(decodeDmarcReports(zipOf([{ name: 'x.xml', content: Buffer.from(xxe) }])))).code,
      'DMARC_REPORT_DTD',
    );
  });

  test('an undeclared entity is not expanded from anywhere: the XML is refused', async () => {
    const err = await errorOf(decodeDmarcReports(Buffer.from(reportXml({ orgName: '&xxe;' }))));
    assert.equal(err.code, 'DMARC_REPORT_BAD_XML');
  });

  test('a 10 MB single value is refused by the pre-scan, before the parser', async () => {
    const huge = reportXml({ orgName: 'A'.repeat(10_000_000) });
    const err = await errorOf(decodeDmarcReports(Buffer.from(huge)));
    assert.equal(err.code, 'DMARC_REPORT_FIELD_TOO_LONG');
    assert.match(err.message, new RegExp(`longer than ${MAX_XML_TEXT} characters`));
    const inCdata = reportXml({ orgName: `<![CDATA[${'<'.repeat(MAX_XML_TEXT + 1)}]]>` });
    assert.equal(
      (await errorOf(decodeDmarcReports(Buffer.from(inCdata)))).code,
      'DMARC_REPORT_FIELD_TOO_LONG',
    );
    const inAttribute = reportXml().replace('<feedback>', `<feedback a="${'x'.repeat(MAX_XML_TEXT + 1)}">`);
    assert.equal(
      (await errorOf(decodeDmarcReports(Buffer.from(inAttribute)))).code,
      'DMARC_REPORT_FIELD_TOO_LONG',
    );
  });

  test('more than 10,000 records: DMARC_REPORT_TOO_MANY_RECORDS, refused at the 10,001st while parsing', async () => {
    const many = reportXml({ records: '<record/>\n'.repeat(10_001) });
    const err = await errorOf(decodeDmarcReports(Buffer.from(many)));
    assert.equal(err.code, 'DMARC_REPORT_TOO_MANY_RECORDS');
    // The line of the 10,001st <record> (reportXml puts the records after its own lines).
    const firstLine = many.split('\n').findIndex((line) => line.includes('<record/>')) + 1;
    assert.equal(err.where, `line ${firstLine + 10_000}`);
    // Exactly 10,000 are read; <record> elements elsewhere than under <feedback> are not counted.
    const enough = reportXml({ records: RECORD_1.repeat(10_000) });
    assert.equal((await decodeDmarcReports(Buffer.from(enough))).reports[0]!.records.length, 10_000);
    const nested = reportXml({ records: `${RECORD_1}<extension>${'<record/>'.repeat(10_001)}</extension>` });
    assert.equal((await decodeDmarcReports(Buffer.from(nested))).reports[0]!.records.length, 1);
  });

  test('deep nesting and too many elements are refused while parsing', async () => {
    const deep = reportXml({ records: `${'<x>'.repeat(5000)}${'</x>'.repeat(5000)}` });
    const err = await errorOf(decodeDmarcReports(Buffer.from(deep)));
    assert.equal(err.code, 'DMARC_REPORT_TOO_LARGE');
    assert.match(err.message, new RegExp(`more than ${MAX_XML_DEPTH} levels of nesting`));
    const wide = reportXml({ records: '<x/>'.repeat(MAX_XML_ELEMENTS) });
    const tooWide = await errorOf(decodeDmarcReports(Buffer.from(wide)));
    assert.equal(tooWide.code, 'DMARC_REPORT_TOO_LARGE');
    assert.match(tooWide.message, new RegExp(`more than ${MAX_XML_ELEMENTS} elements`));
  });

  test('an element named __proto__ is only a key', async () => {
    const xml = reportXml().replace(
      '<version>1.0</version>',
      '<__proto__><polluted>yes</polluted></__proto__>',
    );
    const { reports, warnings } = await decodeDmarcReports(Buffer.from(xml));
    assert.equal(reports[0]!.reportId, 'r-2024-05-01-42');
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    assert.deepEqual(
      warnings.map((w) => w.code),
      ['DMARC_REPORT_UNKNOWN_ELEMENT'],
    );
  });
});

describe('reportKindOf', () => {
  test('DMARC in XML, gzip, zip and e-mail; TLS-RPT in JSON, gzip and e-mail; unknown otherwise', async () => {
    assert.equal(await reportKindOf(XML), 'dmarc');
    assert.equal(await reportKindOf(gzipSync(XML)), 'dmarc');
    assert.equal(await reportKindOf(ZIP), 'dmarc');
    assert.equal(await reportKindOf(tlsRptJson), 'tlsrpt');
    assert.equal(await reportKindOf(tlsRptGzip), 'tlsrpt');
    const tlsMail = reportEmail([
      { type: 'application/tlsrpt+gzip', filename: 'r.json.gz', content: tlsRptGzip },
    ]);
    assert.equal(await reportKindOf(tlsMail), 'tlsrpt');
    for (const other of ['', 'hello', '<html></html>', '{"a": 1}']) {
      assert.equal(await reportKindOf(Buffer.from(other)), 'unknown', other);
    }
    assert.equal(await reportKindOf(Buffer.from([0x1f, 0x8b, 1, 2, 3])), 'unknown');
    assert.equal(await reportKindOf(Buffer.from('PK\x03\x04 broken')), 'unknown');
  });
});

describe('isDmarcInput', () => {
  test('DMARC content, and XML or zip of neither kind, go to the DMARC decoder; the rest to TLS-RPT', async () => {
    for (const input of [
      XML,
      gzipSync(XML),
      ZIP,
      Buffer.from(' <html></html>'),
      Buffer.from('PK\x03\x04 broken'),
    ]) {
      assert.equal(await isDmarcInput(input), true, input.subarray(0, 20).toString('latin1'));
    }
    for (const input of [
      tlsRptJson,
      tlsRptGzip,
      Buffer.from('hello'),
      Buffer.from(''),
      Buffer.from([0x1f, 0x8b, 1]),
    ]) {
      assert.equal(await isDmarcInput(input), false, input.subarray(0, 20).toString('latin1'));
    }
  });
});

describe('decodeIfDmarc', () => {
  /** The two steps it stands for: isDmarcInput, then decodeDmarcReports; errors as code, where and message. */
  async function outcome(run: () => Promise<unknown>): Promise<unknown> {
    try {
      return { read: await run() };
    } catch (err) {
      assert.ok(err instanceof DmarcError, `expected DmarcError, got ${err}`);
      return { code: err.code, where: err.where, message: err.message };
    }
  }
  const second = Buffer.from(reportXml({ records: RECORD_2 }).replace('r-2024-05-01-42', 'second'));
  const cases: Array<[string, Buffer, { maxCompressedBytes?: number; maxDecompressedBytes?: number }?]> = [
    ['XML', XML],
    ['gzip', gzipSync(XML)],
    ['zip', ZIP],
    ['stored zip', zipOf([{ name: 'r.xml', content: XML, method: 0 }])],
    ['zip entry not named *.xml (a warning)', zipOf([{ name: 'report.txt', content: XML }])],
    ['gzip and a CRLF after it (a warning)', Buffer.concat([gzipSync(XML), Buffer.from('\r\n')])],
    ['gzip over the XML cap', gzipSync(XML), { maxDecompressedBytes: 100 }],
    ['zip over the XML cap', ZIP, { maxDecompressedBytes: 100 }],
    ['gzip over the input cap', gzipSync(XML), { maxCompressedBytes: 10 }],
    [
      'zip with two files',
      zipOf([
        { name: 'a.xml', content: XML },
        { name: 'b.xml', content: second },
      ]),
    ],
    ['zip with a ../ name', zipOf([{ name: '../r.xml', content: XML }])],
    ['zip in gzip', gzipSync(ZIP)],
    ['gzip of broken XML', gzipSync('<feedback><report_metadata>')],
    ['gzip of whitespace', gzipSync('   \n')],
    ['gzip of other XML', gzipSync('<html></html>')],
    ['gzip of text', gzipSync('hello')],
    ['broken gzip', Buffer.from([0x1f, 0x8b, 1, 2, 3])],
    ['broken zip', Buffer.from('PK\x03\x04 broken')],
    ['TLS-RPT JSON', tlsRptJson],
    ['TLS-RPT gzip', tlsRptGzip],
    ['TLS-RPT in a zip', zipOf([{ name: 'r.json', content: tlsRptJson }])],
    [
      'DMARC e-mail',
      dmarcEmail([{ type: 'application/gzip', filename: 'r.xml.gz', content: gzipSync(XML) }]),
    ],
    ['empty', Buffer.from('')],
  ];
  test('the same as the two steps for mutated gzip and zip reports', async () => {
    const inputs = [gzipSync(XML), ZIP, tlsRptGzip, zipOf([{ name: 'r.xml', content: XML, method: 0 }])];
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...inputs),
        fc.nat(),
        fc.nat(),
        fc.integer({ min: 0, max: 255 }),
        async (base, at, cut, byte) => {
          const input = Buffer.from(base.subarray(0, base.length - (cut % 20)));
          input[at % input.length] = byte;
          const twoSteps = await outcome(async () =>
            (await isDmarcInput(input)) ? decodeDmarcReports(input) : undefined,
          );
          assert.deepEqual(await outcome(() => decodeIfDmarc(input)), twoSteps);
        },
      ),
      { numRuns: 300 },
    );
  });

  for (const [name, input, options] of cases) {
    test(`the same as isDmarcInput then decodeDmarcReports: ${name}`, async () => {
      const twoSteps = await outcome(async () =>
        (await isDmarcInput(input)) ? decodeDmarcReports(input, options) : undefined,
      );
      assert.deepEqual(await outcome(() => decodeIfDmarc(input, options)), twoSteps);
    });
  }
});

describe('decodeDmarcReports: only DmarcError for any input', () => {
  test('random bytes and mutated reports', async () => {
    const inputs = [XML, gzipSync(XML), ZIP];
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.uint8Array({ maxLength: 300 }),
          fc
            .tuple(fc.constantFrom(...inputs), fc.nat(), fc.nat(), fc.integer({ min: 0, max: 255 }))
            .map(([base, at, cut, byte]) => {
              const copy = Buffer.from(base.subarray(0, base.length - (cut % 20)));
              copy[at % copy.length] = byte;
              return copy;
            }),
        ),
        async (bytes) => {
          try {
            await decodeDmarcReports(bytes);
          } catch (err) {
            assert.ok(err instanceof DmarcError, `${(err as Error)?.stack}`);
          }
          assert.ok(['dmarc', 'tlsrpt', 'unknown'].includes(await reportKindOf(bytes)));
        },
      ),
      { numRuns: 300 },
    );
  });
});

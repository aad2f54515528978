// decodeReports: JSON, gzip and email (RFC 8460 §5.3) input, caps, and only-typed-errors fuzzing.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { describe, test } from 'node:test';
import { createGzip, gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { TlsRptError } from '../../src/tlsrpt/error.js';
import { decodeReports, prescanJson } from '../../src/tlsrpt/parse.js';
import { longOrganizationGzip } from '../fixtures/intake/hostile.js';
import { reportEmail as email, type Part, reportGzip, reportJson } from '../fixtures/tlsrpt/build.js';

async function errorOf(promise: Promise<unknown>): Promise<TlsRptError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof TlsRptError, `expected TlsRptError, got ${err}`);
    return err;
  }
  assert.fail('expected a TlsRptError');
}

/** `prefix` then `total` bytes of spaces, gzip-compressed as a stream (never holding the whole input). */
async function gzipBomb(total: number, prefix = ''): Promise<Buffer> {
  const gz = createGzip({ level: 9 });
  const chunks: Buffer[] = [];
  gz.on('data', (c: Buffer) => chunks.push(c));
  const ended = once(gz, 'end');
  gz.write(prefix);
  const chunk = Buffer.alloc(1024 * 1024, 0x20);
  for (let written = 0; written < total; written += chunk.length) {
    if (!gz.write(chunk)) await once(gz, 'drain');
  }
  gz.end();
  await ended;
  return Buffer.concat(chunks);
}

describe('decodeReports: plain input', () => {
  test('JSON', async () => {
    const { reports, warnings } = await decodeReports(reportJson);
    assert.equal(reports.length, 1);
    assert.equal(reports[0]!.reportId, '2024-05-01_receiver.example_7f3a');
    assert.deepEqual(warnings, []);
  });

  test('JSON with a UTF-8 BOM and leading whitespace', async () => {
    const input = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('\r\n  '), reportJson]);
    assert.equal((await decodeReports(input)).reports.length, 1);
  });

  test('gzip', async () => {
    const { reports } = await decodeReports(reportGzip);
    assert.equal(reports[0]!.policies[0]!.failed, 15);
  });

  test('warnings come back with where they are', async () => {
    const json = JSON.parse(reportJson.toString());
    json['date-range']['start-datetime'] = '2024-05-01T00:00:00';
    const { warnings } = await decodeReports(gzipSync(JSON.stringify(json)));
    assert.deepEqual(
      warnings.map((w) => [w.code, w.where]),
      [['TLSRPT_DATETIME_NO_TIMEZONE', 'date-range.start-datetime']],
    );
  });

  const bad: Array<[string, () => Buffer | Promise<Buffer>, string]> = [
    ['empty input', () => Buffer.alloc(0), 'TLSRPT_NOT_A_REPORT'],
    ['plain text', () => Buffer.from('hello, this is not a report\n'), 'TLSRPT_NOT_A_REPORT'],
    ['a ZIP archive', () => Buffer.from('PK\x03\x04\x14\x00\x00\x00', 'latin1'), 'TLSRPT_NOT_A_REPORT'],
    ['a JSON array', () => Buffer.from('[1,2,3]'), 'TLSRPT_NOT_A_REPORT'],
    ['broken JSON', () => Buffer.from('{"organization-name": "x",'), 'TLSRPT_BAD_JSON'],
    ['invalid UTF-8', () => Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]), 'TLSRPT_BAD_JSON'],
    ['truncated gzip', () => reportGzip.subarray(0, reportGzip.length - 12), 'TLSRPT_BAD_GZIP'],
    [
      'corrupt gzip',
      () => Buffer.concat([reportGzip.subarray(0, 12), Buffer.alloc(40, 0xaa)]),
      'TLSRPT_BAD_GZIP',
    ],
    ['gzip of gzip', () => gzipSync(reportGzip), 'TLSRPT_NOT_A_REPORT'],
    ['gzip of text', () => gzipSync('not json'), 'TLSRPT_BAD_JSON'],
    ['a JSON object that is no report', () => Buffer.from('{"feedback": {}}'), 'TLSRPT_NOT_A_REPORT'],
    [
      'a report missing its policies',
      () => Buffer.from('{"organization-name":"x","report-id":"y"}'),
      'TLSRPT_MISSING_FIELD',
    ],
  ];
  for (const [why, make, code] of bad) {
    test(why, async () => {
      const err = await errorOf(decodeReports(await make()));
      assert.equal(err.code, code);
    });
  }
});

describe('decodeReports: caps', () => {
  test('a gzip bomb (200 MiB of spaces) is refused under the default 10 MiB cap', async () => {
    const bomb = await gzipBomb(200 * 1024 * 1024, '{"organization-name": "');
    assert.ok(bomb.length < 1024 * 1024, 'the bomb itself is small');
    const err = await errorOf(decodeReports(bomb));
    assert.equal(err.code, 'TLSRPT_TOO_LARGE');
    assert.match(err.message, /decompresses to more than the limit of 10485760 bytes/);
  });

  test('the 46 KB gzip whose organization-name is 45 MiB (issue 10) is refused by default', async () => {
    const attack = await longOrganizationGzip(45 * 1024 * 1024);
    assert.ok(attack.length < 64 * 1024, `${attack.length} bytes`);
    const err = await errorOf(decodeReports(attack));
    assert.equal(err.code, 'TLSRPT_TOO_LARGE');
  });

  test('with room for it, the long string is refused by the pre-scan, before JSON.parse', async () => {
    const attack = await longOrganizationGzip(45 * 1024 * 1024);
    const err = await errorOf(decodeReports(attack, { maxDecompressedBytes: 64 * 1024 * 1024 }));
    assert.equal(err.code, 'TLSRPT_FIELD_TOO_LONG');
    assert.match(err.message, /offset 21/);
    // Invalid JSON after the string: the pre-scan answers, not JSON.parse.
    const broken = Buffer.from(`{"organization-name":"${'a'.repeat(65_537)}", !!!`);
    assert.equal((await errorOf(decodeReports(broken))).code, 'TLSRPT_FIELD_TOO_LONG');
  });

  test('the pre-scan counts characters as JSON decodes them (escapes are one character)', async () => {
    const withPolicyString = (entry: string) =>
      Buffer.from(
        reportJson.toString('utf8').replace('"policy-string": [', () => `"policy-string": ["${entry}", `),
      );
    const atCap = withPolicyString('\\u0061'.repeat(65_536));
    const { reports } = await decodeReports(atCap);
    assert.equal(reports[0]!.policies[0]!.policyStrings[0], 'a'.repeat(65_536));
    const over = withPolicyString('\\u0061'.repeat(65_537));
    assert.equal((await errorOf(decodeReports(over))).code, 'TLSRPT_FIELD_TOO_LONG');
    // a surrogate pair is two characters, as in JavaScript
    assert.doesNotThrow(() => prescanJson('["\\ud83d\\ude00"]', { maxDepth: 2, maxStringLength: 2 }));
    assert.throws(() => prescanJson('["😀"]', { maxDepth: 2, maxStringLength: 1 }), TlsRptError);
  });

  test('the decompressed cap can be lowered', async () => {
    const err = await errorOf(decodeReports(reportGzip, { maxDecompressedBytes: 100 }));
    assert.equal(err.code, 'TLSRPT_TOO_LARGE');
    assert.equal(
      (await decodeReports(reportGzip, { maxDecompressedBytes: reportJson.length })).reports.length,
      1,
    );
  });

  test('plain JSON over the decompressed cap is refused', async () => {
    const err = await errorOf(decodeReports(reportJson, { maxDecompressedBytes: reportJson.length - 1 }));
    assert.equal(err.code, 'TLSRPT_TOO_LARGE');
  });

  test('input over the compressed cap is refused before anything else', async () => {
    const err = await errorOf(decodeReports(reportGzip, { maxCompressedBytes: reportGzip.length - 1 }));
    assert.equal(err.code, 'TLSRPT_TOO_LARGE');
    assert.equal(
      (await decodeReports(reportGzip, { maxCompressedBytes: reportGzip.length })).reports.length,
      1,
    );
  });

  test('a gzip bomb inside an email is refused', async () => {
    const bomb = await gzipBomb(8 * 1024 * 1024);
    const mail = email([{ type: 'application/tlsrpt+gzip', filename: 'r.json.gz', content: bomb }]);
    const err = await errorOf(decodeReports(mail, { maxDecompressedBytes: 1024 * 1024 }));
    assert.equal(err.code, 'TLSRPT_TOO_LARGE');
    assert.match(err.message, /^attachment 1 \(r\.json\.gz\): /);
  });

  test('the decompressed cap is for the whole email, not for each attachment', async () => {
    // Three attachments of 400 KiB each (small as gzip): each under a 1 MiB cap, together over it.
    const padded = (i: number) => {
      const json = JSON.parse(reportJson.toString('utf8'));
      json['report-id'] = `part-${i}`;
      json.policies[0]['failure-details'][0]['additional-information'] = 'x'.repeat(1000);
      json.policies[0]['failure-details'] = Array(400).fill(json.policies[0]['failure-details'][0]);
      return gzipSync(JSON.stringify(json));
    };
    const parts = [0, 1, 2].map((i) => ({ type: 'application/tlsrpt+gzip', content: padded(i) }));
    const limit = { maxDecompressedBytes: 1024 * 1024 };
    assert.equal((await decodeReports(email(parts.slice(0, 2)), limit)).reports.length, 2);
    const err = await errorOf(decodeReports(email(parts), limit));
    assert.equal(err.code, 'TLSRPT_TOO_LARGE');
    assert.match(err.message, /^attachment 3: .*all the attachments together/);
  });

  test('deeply nested JSON is refused without parsing it', async () => {
    const deep = Buffer.from(`{"a":${'['.repeat(100_000)}${']'.repeat(100_000)}}`);
    assert.equal((await errorOf(decodeReports(deep))).code, 'TLSRPT_TOO_DEEP');
    assert.equal((await errorOf(decodeReports(gzipSync(deep)))).code, 'TLSRPT_TOO_DEEP');
  });

  test('the depth cap is exact and can be changed', async () => {
    // the fixture nests 5 levels: report, policies, entry, failure-details, detail
    assert.equal((await decodeReports(reportJson, { maxJsonDepth: 5 })).reports.length, 1);
    assert.equal((await errorOf(decodeReports(reportJson, { maxJsonDepth: 4 }))).code, 'TLSRPT_TOO_DEEP');
    const limits = (maxDepth: number) => ({ maxDepth, maxStringLength: 1000 });
    assert.doesNotThrow(() => prescanJson(`${'['.repeat(64)}${']'.repeat(64)}`, limits(64)));
    assert.throws(() => prescanJson(`${'['.repeat(65)}${']'.repeat(65)}`, limits(64)), TlsRptError);
    // brackets inside strings (with escaped quotes) do not count
    assert.doesNotThrow(() => prescanJson(`["\\"${'['.repeat(100)}"]`, limits(2)));
  });

  test('invalid options are a RangeError', async () => {
    await assert.rejects(decodeReports(reportJson, { maxJsonDepth: 0 }), RangeError);
    await assert.rejects(decodeReports(reportJson, { maxCompressedBytes: 1.5 }), RangeError);
  });
});

describe('decodeReports: email (RFC 8460 §5.3)', () => {
  test('a standard report email', async () => {
    const mail = email([
      {
        type: 'application/tlsrpt+gzip',
        filename: 'sender.example!receiver.example!1714521600!1714607999.json.gz',
        content: reportGzip,
      },
    ]);
    const { reports, warnings } = await decodeReports(mail);
    assert.equal(reports.length, 1);
    assert.equal(reports[0]!.organization, 'Sender Mail Co');
    assert.deepEqual(warnings, []);
  });

  test('two report attachments give two reports', async () => {
    const second = JSON.parse(reportJson.toString());
    second['report-id'] = 'second';
    const mail = email([
      { type: 'application/tlsrpt+gzip', filename: 'a.json.gz', content: reportGzip },
      { type: 'application/tlsrpt+json', filename: 'b.json', content: Buffer.from(JSON.stringify(second)) },
    ]);
    const { reports, warnings } = await decodeReports(mail);
    assert.deepEqual(
      reports.map((r) => r.reportId),
      ['2024-05-01_receiver.example_7f3a', 'second'],
    );
    assert.deepEqual(warnings, []);
  });

  test('missing TLS-Report-* headers and report-type are warnings', async () => {
    const mail = email([{ type: 'application/tlsrpt+gzip', content: reportGzip }], {
      reportHeaders: false,
      reportType: false,
    });
    const { reports, warnings } = await decodeReports(mail);
    assert.equal(reports.length, 1);
    assert.deepEqual(
      warnings.map((w) => [w.code, w.message.match(/TLS-Report-\w+|multipart\/\w+/)?.[0]]),
      [
        ['TLSRPT_EMAIL_NOT_TLSRPT', 'multipart/mixed'],
        ['TLSRPT_EMAIL_MISSING_HEADER', 'TLS-Report-Domain'],
        ['TLSRPT_EMAIL_MISSING_HEADER', 'TLS-Report-Submitter'],
      ],
    );
  });

  const tolerated: Array<[string, Part]> = [
    [
      'uncompressed application/tlsrpt, 7bit',
      { type: 'application/tlsrpt', content: reportJson, encoding: '7bit' },
    ],
    ['application/gzip', { type: 'application/gzip', content: reportGzip }],
    ['application/json', { type: 'application/json', content: reportJson }],
    [
      'octet-stream named .json.gz',
      { type: 'application/octet-stream', filename: 'x.json.gz', content: reportGzip },
    ],
    [
      'octet-stream named .gz',
      { type: 'application/octet-stream', filename: 'report.gz', content: reportGzip },
    ],
  ];
  for (const [why, part] of tolerated) {
    test(`accepted with a warning: ${why}`, async () => {
      const { reports, warnings } = await decodeReports(email([part]));
      assert.equal(reports.length, 1);
      assert.deepEqual(
        warnings.map((w) => [w.code, w.where?.startsWith('attachment 1')]),
        [['TLSRPT_EMAIL_CONTENT_TYPE', true]],
      );
    });
  }

  test('gzip label on JSON content is read by content, with a warning', async () => {
    const { reports, warnings } = await decodeReports(
      email([{ type: 'application/tlsrpt+gzip', content: reportJson }]),
    );
    assert.equal(reports.length, 1);
    assert.deepEqual(
      warnings.map((w) => w.code),
      ['TLSRPT_EMAIL_NOT_GZIP'],
    );
  });

  test('a single-part email whose body is the report', async () => {
    const mail = Buffer.from(
      [
        'From: tlsrpt@sender.example',
        'TLS-Report-Domain: receiver.example',
        'TLS-Report-Submitter: sender.example',
        'MIME-Version: 1.0',
        'Content-Type: application/tlsrpt+gzip',
        'Content-Transfer-Encoding: base64',
        '',
        reportGzip.toString('base64'),
        '',
      ].join('\r\n'),
    );
    const { reports, warnings } = await decodeReports(mail);
    assert.equal(reports.length, 1);
    assert.deepEqual(
      warnings.map((w) => w.code),
      ['TLSRPT_EMAIL_NOT_TLSRPT'],
    );
  });

  test('report warnings name the attachment', async () => {
    const json = JSON.parse(reportJson.toString());
    delete json.policies[1].policy['policy-domain'];
    const mail = email([
      { type: 'application/tlsrpt+json', filename: 'r.json', content: Buffer.from(JSON.stringify(json)) },
    ]);
    const { warnings } = await decodeReports(mail);
    assert.deepEqual(
      warnings.map((w) => w.where),
      ['attachment 1 (r.json), policies[1].policy'],
    );
  });

  test('an email without a report attachment is an error', async () => {
    const err = await errorOf(
      decodeReports(
        email([{ type: 'application/octet-stream', filename: 'notes.txt', content: Buffer.from('hi') }]),
      ),
    );
    assert.equal(err.code, 'TLSRPT_NO_REPORT_IN_EMAIL');
    assert.match(err.message, /attachments: text\/plain$/); // mailparser guesses the type from the file name
    assert.equal((await errorOf(decodeReports(email([])))).code, 'TLSRPT_NO_REPORT_IN_EMAIL');
  });

  test('a broken report attachment is an error naming the attachment', async () => {
    const json = JSON.parse(reportJson.toString());
    delete json['report-id'];
    const mail = email([
      { type: 'application/tlsrpt+gzip', filename: 'good.json.gz', content: reportGzip },
      { type: 'application/tlsrpt+json', filename: 'bad.json', content: Buffer.from(JSON.stringify(json)) },
    ]);
    const err = await errorOf(decodeReports(mail));
    assert.equal(err.code, 'TLSRPT_MISSING_FIELD');
    assert.equal(err.where, 'attachment 2 (bad.json), report-id');
  });

  test('an mbox "From " line before the headers is skipped', async () => {
    const mail = Buffer.concat([
      Buffer.from('From tlsrpt@sender.example Thu May  2 06:00:00 2024\n'),
      email([{ type: 'application/tlsrpt+gzip', content: reportGzip }]),
    ]);
    assert.equal((await decodeReports(mail)).reports.length, 1);
  });
});

describe('fuzz: random bytes only ever give TlsRptError', () => {
  async function onlyTypedErrors(bytes: Uint8Array): Promise<void> {
    try {
      await decodeReports(bytes, { maxDecompressedBytes: 1024 * 1024 });
    } catch (err) {
      assert.ok(err instanceof TlsRptError, `non-TlsRptError: ${err}`);
    }
  }
  const bytes = fc.uint8Array({ maxLength: 600 });
  const prefixes: Array<[string, Uint8Array]> = [
    ['no prefix', new Uint8Array()],
    ['gzip magic', new Uint8Array([0x1f, 0x8b, 0x08, 0x00])],
    ['JSON', Buffer.from('{"organization-name":')],
    [
      'email header',
      Buffer.from(
        'Content-Type: multipart/report; boundary=x\r\n\r\n--x\r\nContent-Type: application/tlsrpt+gzip\r\n\r\n',
      ),
    ],
  ];
  for (const [why, prefix] of prefixes) {
    test(why, async () => {
      await fc.assert(
        fc.asyncProperty(bytes, (tail) => onlyTypedErrors(Buffer.concat([prefix, tail]))),
        { numRuns: 250 },
      );
    });
  }

  test('a valid gzip report with random bytes flipped', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.nat({ max: reportGzip.length - 1 }), fc.integer({ min: 0, max: 255 })), {
          minLength: 1,
          maxLength: 8,
        }),
        async (flips) => {
          const damaged = Buffer.from(reportGzip);
          for (const [at, value] of flips) damaged[at] = value;
          await onlyTypedErrors(damaged);
        },
      ),
      { numRuns: 300 },
    );
  });

  test('a valid email with random bytes flipped', async () => {
    const mail = email([{ type: 'application/tlsrpt+gzip', filename: 'r.json.gz', content: reportGzip }]);
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.nat({ max: mail.length - 1 }), fc.integer({ min: 0, max: 255 })), {
          minLength: 1,
          maxLength: 8,
        }),
        async (flips) => {
          const damaged = Buffer.from(mail);
          for (const [at, value] of flips) damaged[at] = value;
          await onlyTypedErrors(damaged);
        },
      ),
      { numRuns: 200 },
    );
  });
});

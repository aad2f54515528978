// TLS-RPT report JSON (RFC 8460 §4): strict on what makes a report, tolerant of real-world quirks.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import { TlsRptError } from '../../src/tlsrpt/error.js';
import { RESULT_TYPES, reportFromWire, reportToWire, type TlsReport } from '../../src/tlsrpt/report.js';
import { type EditableJson, reportObject } from '../fixtures/tlsrpt/build.js';

type Json = EditableJson;
const fixture = reportObject;

function errorOf(json: unknown): TlsRptError {
  try {
    reportFromWire(json);
  } catch (err) {
    assert.ok(err instanceof TlsRptError, `expected TlsRptError, got ${err}`);
    return err;
  }
  assert.fail('expected a TlsRptError');
}

function warningCodes(json: unknown): string[] {
  return reportFromWire(json).warnings.map((w) => w.code);
}

describe('reportFromWire: a well-formed report', () => {
  test('maps every field to the internal shape', () => {
    const { report, warnings } = reportFromWire(fixture());
    assert.deepEqual(warnings, []);
    assert.deepEqual(report, {
      organization: 'Sender Mail Co',
      reportId: '2024-05-01_receiver.example_7f3a',
      contactInfo: 'tlsrpt-admin@sender.example',
      start: '2024-05-01T00:00:00Z',
      end: '2024-05-01T23:59:59Z',
      policies: [
        {
          type: 'sts',
          domain: 'receiver.example',
          policyStrings: [
            'version: STSv1',
            'mode: enforce',
            'mx: mx1.receiver.example',
            'mx: mx2.receiver.example',
            'max_age: 604800',
          ],
          mxHosts: ['mx1.receiver.example', 'mx2.receiver.example'],
          successful: 1200,
          failed: 15,
          failures: [
            {
              resultType: 'certificate-expired',
              count: 10,
              sendingMtaIp: '192.0.2.10',
              receivingMxHostname: 'mx2.receiver.example',
              receivingIp: '198.51.100.25',
            },
            {
              resultType: 'validation-failure',
              count: 5,
              sendingMtaIp: '2001:db8::25',
              receivingMxHostname: 'mx1.receiver.example',
              receivingMxHelo: 'mail.receiver.example',
              receivingIp: '198.51.100.24',
              additionalInformation: 'https://sender.example/tlsrpt/help#validation',
              failureReasonCode: 'X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
            },
          ],
        },
        {
          type: 'tlsa',
          domain: 'mx1.receiver.example',
          policyStrings: ['3 1 1 0c72ac70b745ac19998811b131d662c9ac69dbdbe7cb23e5b514b56664c5d3d6'],
          mxHosts: [],
          successful: 800,
          failed: 0,
          failures: [],
        },
      ],
    });
  });

  test('every RFC 8460 §4.3 result type is known (no note)', () => {
    for (const resultType of RESULT_TYPES) {
      const json = fixture();
      json.policies[0]['failure-details'][0]['result-type'] = resultType;
      assert.deepEqual(warningCodes(json), [], resultType);
    }
  });

  test('datetimes with an offset are converted to UTC', () => {
    const json = fixture();
    json['date-range'] = {
      'start-datetime': '2024-05-01T02:00:00+02:00',
      'end-datetime': '2024-05-01T19:59:59.5-04:00',
    };
    const { report, warnings } = reportFromWire(json);
    assert.equal(report.start, '2024-05-01T00:00:00Z');
    assert.equal(report.end, '2024-05-01T23:59:59.500Z');
    assert.deepEqual(warnings, []);
  });
});

describe('reportFromWire: real-world quirks are warnings', () => {
  const quirks: Array<[string, (j: Json) => void, string[], (r: TlsReport) => void]> = [
    [
      'datetime without time zone is read as UTC',
      (j) => {
        j['date-range']['start-datetime'] = '2024-05-01T00:00:00';
      },
      ['TLSRPT_DATETIME_NO_TIMEZONE'],
      (r) => assert.equal(r.start, '2024-05-01T00:00:00Z'),
    ],
    [
      'mx-host as a string',
      (j) => {
        j.policies[0].policy['mx-host'] = '*.receiver.example';
      },
      ['TLSRPT_STRING_NOT_LIST'],
      (r) => assert.deepEqual(r.policies[0]!.mxHosts, ['*.receiver.example']),
    ],
    [
      'mx-host missing',
      (j) => {
        delete j.policies[0].policy['mx-host'];
      },
      [],
      (r) => assert.deepEqual(r.policies[0]!.mxHosts, []),
    ],
    [
      'failure-details that do not add up to the total',
      (j) => {
        j.policies[0].summary['total-failure-session-count'] = 14;
      },
      ['TLSRPT_COUNT_MISMATCH'],
      (r) => assert.equal(r.policies[0]!.failed, 14),
    ],
    [
      'missing total-failure-session-count: the sum is used',
      (j) => {
        delete j.policies[0].summary['total-failure-session-count'];
      },
      ['TLSRPT_MISSING_FAILURE_TOTAL'],
      (r) => assert.equal(r.policies[0]!.failed, 15),
    ],
    [
      'failures counted but no failure-details',
      (j) => {
        delete j.policies[0]['failure-details'];
      },
      ['TLSRPT_NO_FAILURE_DETAILS'],
      (r) => assert.deepEqual(r.policies[0]!.failures, []),
    ],
    [
      'missing sending-mta-ip',
      (j) => {
        delete j.policies[0]['failure-details'][1]['sending-mta-ip'];
      },
      ['TLSRPT_MISSING_SENDING_MTA_IP'],
      (r) => assert.equal(r.policies[0]!.failures[1]!.sendingMtaIp, undefined),
    ],
    [
      'missing policy-domain',
      (j) => {
        delete j.policies[1].policy['policy-domain'];
      },
      ['TLSRPT_MISSING_POLICY_DOMAIN'],
      (r) => assert.equal(r.policies[1]!.domain, ''),
    ],
    [
      'missing policy-string for an sts policy',
      (j) => {
        delete j.policies[0].policy['policy-string'];
      },
      ['TLSRPT_MISSING_POLICY_STRING'],
      (r) => assert.deepEqual(r.policies[0]!.policyStrings, []),
    ],
    [
      'unknown policy-type is kept',
      (j) => {
        j.policies[1].policy['policy-type'] = 'future-policy';
      },
      ['TLSRPT_UNKNOWN_POLICY_TYPE'],
      (r) => assert.equal(r.policies[1]!.type, 'future-policy'),
    ],
    [
      'unknown result-type is kept',
      (j) => {
        j.policies[0]['failure-details'][0]['result-type'] = 'quantum-failure';
      },
      ['TLSRPT_UNKNOWN_RESULT_TYPE'],
      (r) => assert.equal(r.policies[0]!.failures[0]!.resultType, 'quantum-failure'),
    ],
    [
      'missing contact-info',
      (j) => {
        delete j['contact-info'];
      },
      ['TLSRPT_MISSING_CONTACT_INFO'],
      (r) => assert.equal(r.contactInfo, undefined),
    ],
    [
      'end before start',
      (j) => {
        j['date-range']['end-datetime'] = '2024-04-30T00:00:00Z';
      },
      ['TLSRPT_DATE_RANGE_REVERSED'],
      (r) => assert.equal(r.end, '2024-04-30T00:00:00Z'),
    ],
    [
      'no policies at all',
      (j) => (j.policies = []),
      ['TLSRPT_NO_POLICIES'],
      (r) => assert.deepEqual(r.policies, []),
    ],
    [
      'unknown extra fields are ignored',
      (j) => {
        j['x-vendor'] = { anything: [1, 2] };
        j.policies[0].policy['x-extra'] = true;
      },
      [],
      (r) => assert.equal(r.policies.length, 2),
    ],
  ];
  for (const [why, change, codes, check] of quirks) {
    test(why, () => {
      const json = fixture();
      change(json);
      const { report, warnings } = reportFromWire(json);
      assert.deepEqual(
        warnings.map((w) => w.code),
        codes,
      );
      for (const w of warnings) assert.ok(w.where, `${w.code} says where`);
      check(report);
    });
  }

  test('unknown types are notes, data gaps are warnings', () => {
    const json = fixture();
    json.policies[1].policy['policy-type'] = 'future-policy';
    delete json.policies[1].policy['policy-domain'];
    const severities = reportFromWire(json).warnings.map((w) => [w.code, w.severity]);
    assert.deepEqual(severities, [
      ['TLSRPT_UNKNOWN_POLICY_TYPE', 'note'],
      ['TLSRPT_MISSING_POLICY_DOMAIN', 'warning'],
    ]);
  });
});

describe('reportFromWire: what is not a report is an error', () => {
  const notReports: Array<[string, unknown]> = [
    ['null', null],
    ['a number', 42],
    ['a string', 'report'],
    ['an array', [fixture()]],
    ['an unrelated object', { feedback: { report_metadata: {} } }],
  ];
  for (const [why, json] of notReports) {
    test(why, () => assert.equal(errorOf(json).code, 'TLSRPT_NOT_A_REPORT'));
  }

  const broken: Array<[string, (j: Json) => void, string, string]> = [
    [
      'no organization-name',
      (j) => delete j['organization-name'],
      'TLSRPT_MISSING_FIELD',
      'organization-name',
    ],
    ['no report-id', (j) => delete j['report-id'], 'TLSRPT_MISSING_FIELD', 'report-id'],
    ['no date-range', (j) => delete j['date-range'], 'TLSRPT_MISSING_FIELD', 'date-range'],
    ['no policies', (j) => delete j.policies, 'TLSRPT_MISSING_FIELD', 'policies'],
    [
      'no start-datetime',
      (j) => delete j['date-range']['start-datetime'],
      'TLSRPT_MISSING_FIELD',
      'date-range.start-datetime',
    ],
    [
      'no end-datetime',
      (j) => delete j['date-range']['end-datetime'],
      'TLSRPT_MISSING_FIELD',
      'date-range.end-datetime',
    ],
    ['report-id a number', (j) => (j['report-id'] = 7), 'TLSRPT_BAD_FIELD', 'report-id'],
    ['policies an object', (j) => (j.policies = {}), 'TLSRPT_BAD_FIELD', 'policies'],
    ['date-range a string', (j) => (j['date-range'] = '2024-05-01'), 'TLSRPT_BAD_FIELD', 'date-range'],
    [
      'datetime not RFC 3339',
      (j) => (j['date-range']['start-datetime'] = '05/01/2024'),
      'TLSRPT_BAD_DATETIME',
      'date-range.start-datetime',
    ],
    [
      'datetime impossible',
      (j) => (j['date-range']['end-datetime'] = '2023-02-29T00:00:00Z'),
      'TLSRPT_BAD_DATETIME',
      'date-range.end-datetime',
    ],
    [
      'datetime as epoch number',
      (j) => (j['date-range']['start-datetime'] = 1714521600),
      'TLSRPT_BAD_DATETIME',
      'date-range.start-datetime',
    ],
    ['policy entry not an object', (j) => (j.policies[0] = 'sts'), 'TLSRPT_BAD_FIELD', 'policies[0]'],
    ['no policy', (j) => delete j.policies[0].policy, 'TLSRPT_MISSING_FIELD', 'policies[0].policy'],
    ['no summary', (j) => delete j.policies[1].summary, 'TLSRPT_MISSING_FIELD', 'policies[1].summary'],
    [
      'no policy-type',
      (j) => delete j.policies[0].policy['policy-type'],
      'TLSRPT_MISSING_FIELD',
      'policies[0].policy.policy-type',
    ],
    [
      'no total-successful-session-count',
      (j) => delete j.policies[0].summary['total-successful-session-count'],
      'TLSRPT_MISSING_FIELD',
      'policies[0].summary.total-successful-session-count',
    ],
    [
      'negative count',
      (j) => (j.policies[0].summary['total-successful-session-count'] = -1),
      'TLSRPT_BAD_COUNT',
      'policies[0].summary.total-successful-session-count',
    ],
    [
      'fractional count',
      (j) => (j.policies[0].summary['total-failure-session-count'] = 1.5),
      'TLSRPT_BAD_COUNT',
      'policies[0].summary.total-failure-session-count',
    ],
    [
      'count as a string',
      (j) => (j.policies[0]['failure-details'][0]['failed-session-count'] = '10'),
      'TLSRPT_BAD_COUNT',
      'policies[0].failure-details[0].failed-session-count',
    ],
    [
      'count beyond safe integers',
      (j) => (j.policies[0]['failure-details'][0]['failed-session-count'] = 2 ** 60),
      'TLSRPT_BAD_COUNT',
      'policies[0].failure-details[0].failed-session-count',
    ],
    [
      'no result-type',
      (j) => delete j.policies[0]['failure-details'][1]['result-type'],
      'TLSRPT_MISSING_FIELD',
      'policies[0].failure-details[1].result-type',
    ],
    [
      'no failed-session-count',
      (j) => delete j.policies[0]['failure-details'][1]['failed-session-count'],
      'TLSRPT_MISSING_FIELD',
      'policies[0].failure-details[1].failed-session-count',
    ],
    [
      'failure-details not an array',
      (j) => (j.policies[0]['failure-details'] = {}),
      'TLSRPT_BAD_FIELD',
      'policies[0].failure-details',
    ],
    [
      'mx-host with a number',
      (j) => (j.policies[0].policy['mx-host'] = ['mx1.receiver.example', 3]),
      'TLSRPT_BAD_FIELD',
      'policies[0].policy.mx-host',
    ],
    [
      'receiving-ip not a string',
      (j) => (j.policies[0]['failure-details'][0]['receiving-ip'] = ['198.51.100.25']),
      'TLSRPT_BAD_FIELD',
      'policies[0].failure-details[0].receiving-ip',
    ],
  ];
  for (const [why, change, code, where] of broken) {
    test(why, () => {
      const json = fixture();
      change(json);
      const err = errorOf(json);
      assert.equal(err.code, code);
      assert.equal(err.where, where);
      assert.ok(err.message.includes(where), `message names ${where}: ${err.message}`);
    });
  }

  test('every error is listed', () => {
    const json = fixture();
    delete json['organization-name'];
    json.policies[0].summary['total-successful-session-count'] = -5;
    json.policies[1].policy['policy-type'] = 3;
    const err = errorOf(json);
    assert.deepEqual(
      err.problems.map((p) => p.where),
      [
        'organization-name',
        'policies[0].summary.total-successful-session-count',
        'policies[1].policy.policy-type',
      ],
    );
  });
});

describe('reportToWire / reportFromWire', () => {
  const text = fc.string({ minLength: 1, maxLength: 30 });
  const countArb = fc.nat({ max: 1_000_000 });
  const failure = fc.record(
    {
      resultType: fc.constantFrom(...RESULT_TYPES),
      count: countArb,
      sendingMtaIp: fc.ipV4(),
      receivingMxHostname: fc.domain(),
      receivingMxHelo: fc.domain(),
      receivingIp: fc.oneof(fc.ipV4(), fc.ipV6()),
      additionalInformation: fc.webUrl(),
      failureReasonCode: text,
    },
    { requiredKeys: ['resultType', 'count', 'sendingMtaIp'], noNullPrototype: true },
  );
  const policy = fc
    .record(
      {
        type: fc.constantFrom('sts', 'tlsa', 'no-policy-found'),
        domain: fc.domain(),
        policyStrings: fc.array(text, { minLength: 1, maxLength: 4 }),
        mxHosts: fc.array(fc.domain(), { maxLength: 3 }),
        successful: countArb,
        failures: fc.array(failure, { maxLength: 4 }),
      },
      { noNullPrototype: true },
    )
    .map((p) => ({ ...p, failed: p.failures.reduce((sum, f) => sum + f.count, 0) }));
  const instant = fc.date({
    min: new Date('2000-01-01T00:00:00Z'),
    max: new Date('2100-01-01T00:00:00Z'),
    noInvalidDate: true,
  });
  const iso = (d: Date) => d.toISOString().replace('.000Z', 'Z');
  const report = fc
    .record(
      {
        organization: text,
        reportId: text,
        contactInfo: fc.emailAddress(),
        range: fc.tuple(instant, instant).map(([a, b]) => (a <= b ? [iso(a), iso(b)] : [iso(b), iso(a)])),
        policies: fc.array(policy, { minLength: 1, maxLength: 3 }),
      },
      { noNullPrototype: true },
    )
    .map(({ range, ...r }) => ({ ...r, start: range[0]!, end: range[1]! }) as TlsReport);

  test('round trip: fromWire(toWire(x)) gives back x, without warnings', () => {
    fc.assert(
      fc.property(report, (r) => {
        // through JSON text, as it travels
        const { report: back, warnings } = reportFromWire(JSON.parse(JSON.stringify(reportToWire(r))));
        assert.deepEqual(warnings, []);
        assert.deepEqual(back, r);
      }),
      { numRuns: 300 },
    );
  });
});

describe('fuzz', () => {
  test('random JSON values only ever give TlsRptError', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        try {
          reportFromWire(value);
        } catch (err) {
          assert.ok(err instanceof TlsRptError, String(err));
        }
      }),
      { numRuns: 1000 },
    );
  });

  test('random damage to a valid report only ever gives TlsRptError', () => {
    const paths = [
      ['organization-name'],
      ['date-range'],
      ['date-range', 'start-datetime'],
      ['policies'],
      ['policies', 0],
      ['policies', 0, 'policy'],
      ['policies', 0, 'policy', 'mx-host'],
      ['policies', 0, 'summary', 'total-failure-session-count'],
      ['policies', 0, 'failure-details'],
      ['policies', 0, 'failure-details', 1],
      ['policies', 0, 'failure-details', 1, 'failed-session-count'],
    ];
    fc.assert(
      fc.property(fc.constantFrom(...paths), fc.jsonValue(), (path, value) => {
        const json = fixture();
        let target: Json = json;
        for (const key of path.slice(0, -1)) target = target[key];
        target[path[path.length - 1]!] = value;
        try {
          reportFromWire(json);
        } catch (err) {
          assert.ok(err instanceof TlsRptError, String(err));
        }
      }),
      { numRuns: 1000 },
    );
  });
});

// Caps on report content (issue 10): the numbers are the spec, written out here on purpose.
describe('reportFromWire: caps on strings (refused: identity fields, DNS names, addresses, policies)', () => {
  const refused: Array<[string, number, (j: Json, value: string) => void, string]> = [
    ['organization-name', 256, (j, v) => (j['organization-name'] = v), 'organization-name'],
    ['report-id', 256, (j, v) => (j['report-id'] = v), 'report-id'],
    [
      'policy-type',
      64,
      (j, v) => (j.policies[0].policy['policy-type'] = v),
      'policies[0].policy.policy-type',
    ],
    [
      'policy-domain',
      253,
      (j, v) => (j.policies[0].policy['policy-domain'] = v),
      'policies[0].policy.policy-domain',
    ],
    ['mx-host entry', 253, (j, v) => (j.policies[0].policy['mx-host'] = ['mx.example', v]), 'mx-host[1]'],
    ['mx-host as a string', 253, (j, v) => (j.policies[0].policy['mx-host'] = v), 'policy.mx-host'],
    [
      'policy-string entry',
      65536,
      (j, v) => (j.policies[0].policy['policy-string'] = ['version: STSv1', v]),
      'policy-string[1]',
    ],
    ['result-type', 64, (j, v) => (j.policies[0]['failure-details'][0]['result-type'] = v), 'result-type'],
    [
      'sending-mta-ip',
      45,
      (j, v) => (j.policies[0]['failure-details'][0]['sending-mta-ip'] = v),
      'failure-details[0].sending-mta-ip',
    ],
    ['receiving-ip', 45, (j, v) => (j.policies[0]['failure-details'][0]['receiving-ip'] = v), 'receiving-ip'],
    [
      'receiving-mx-hostname',
      253,
      (j, v) => (j.policies[0]['failure-details'][0]['receiving-mx-hostname'] = v),
      'receiving-mx-hostname',
    ],
  ];
  for (const [name, cap, set, where] of refused) {
    test(`${name}: ${cap} characters pass, ${cap + 1} are TLSRPT_FIELD_TOO_LONG`, () => {
      const atCap = fixture();
      set(atCap, 'a'.repeat(cap));
      const { warnings } = reportFromWire(atCap);
      assert.ok(!warnings.some((w) => w.code === 'TLSRPT_FIELD_CLIPPED'));

      const over = fixture();
      set(over, 'a'.repeat(cap + 1));
      const err = errorOf(over);
      assert.equal(err.code, 'TLSRPT_FIELD_TOO_LONG');
      assert.ok(err.where?.includes(where), `${err.where} names ${where}`);
      assert.match(err.message, new RegExp(`${cap + 1}.*${cap}`));
    });
  }

  test('a string is measured in characters (UTF-16 code units, as JSON text decodes it)', () => {
    const json = fixture();
    json['organization-name'] = 'é'.repeat(256);
    assert.equal(reportFromWire(json).report.organization.length, 256);
  });
});

describe('reportFromWire: caps on free text (clipped with a warning; counts unaffected)', () => {
  const clipped: Array<[string, number, (j: Json, v: string) => void, (r: TlsReport) => string | undefined]> =
    [
      ['contact-info', 1024, (j, v) => (j['contact-info'] = v), (r) => r.contactInfo],
      [
        'additional-information',
        1024,
        (j, v) => (j.policies[0]['failure-details'][0]['additional-information'] = v),
        (r) => r.policies[0]!.failures[0]!.additionalInformation,
      ],
      [
        'failure-reason-code',
        1024,
        (j, v) => (j.policies[0]['failure-details'][0]['failure-reason-code'] = v),
        (r) => r.policies[0]!.failures[0]!.failureReasonCode,
      ],
      [
        'receiving-mx-helo',
        253,
        (j, v) => (j.policies[0]['failure-details'][0]['receiving-mx-helo'] = v),
        (r) => r.policies[0]!.failures[0]!.receivingMxHelo,
      ],
    ];
  for (const [name, cap, set, get] of clipped) {
    test(`${name}: ${cap} characters kept whole, ${cap + 1} clipped to ${cap} with TLSRPT_FIELD_CLIPPED`, () => {
      const atCap = fixture();
      set(atCap, 'b'.repeat(cap));
      const kept = reportFromWire(atCap);
      assert.equal(get(kept.report), 'b'.repeat(cap));
      assert.ok(!kept.warnings.some((w) => w.code === 'TLSRPT_FIELD_CLIPPED'));

      const over = fixture();
      set(over, 'b'.repeat(cap + 1));
      const { report, warnings } = reportFromWire(over);
      const value = get(report)!;
      assert.equal(value.length, cap);
      assert.ok(value.endsWith('…'));
      const warning = warnings.find((w) => w.code === 'TLSRPT_FIELD_CLIPPED');
      assert.ok(warning?.where?.endsWith(name), `${warning?.where}`);
      assert.equal(report.policies[0]!.failed, 15);
    });
  }

  test('clipping never splits a surrogate pair', () => {
    const json = fixture();
    json['contact-info'] = '😀'.repeat(600);
    const value = reportFromWire(json).report.contactInfo!;
    assert.ok(value.length <= 1024);
    // A lone surrogate would not survive UTF-8 (it becomes U+FFFD).
    assert.equal(Buffer.from(value, 'utf8').toString('utf8'), value);
  });
});

describe('reportFromWire: caps on lists', () => {
  function policies(n: number): Json[] {
    const one = fixture().policies[0];
    return Array.from({ length: n }, () => structuredClone(one));
  }
  test('100 policies pass, 101 are TLSRPT_LIST_TOO_LONG', () => {
    const json = fixture();
    json.policies = policies(100);
    assert.equal(reportFromWire(json).report.policies.length, 100);
    json.policies = policies(101);
    const err = errorOf(json);
    assert.equal(err.code, 'TLSRPT_LIST_TOO_LONG');
    assert.equal(err.where, 'policies');
  });

  for (const key of ['policy-string', 'mx-host']) {
    test(`${key}: 1000 entries pass, 1001 are TLSRPT_LIST_TOO_LONG`, () => {
      const json = fixture();
      json.policies[0].policy[key] = Array.from({ length: 1000 }, (_, i) => `mx${i}.example`);
      reportFromWire(json);
      json.policies[0].policy[key].push('one.more');
      const err = errorOf(json);
      assert.equal(err.code, 'TLSRPT_LIST_TOO_LONG');
      assert.equal(err.where, `policies[0].policy.${key}`);
    });
  }
});

describe('reportFromWire: failure-details rows beyond the cap are merged, counts exact', () => {
  function rows(n: number, type: (i: number) => string, withIp = true): Json[] {
    return Array.from({ length: n }, (_, i) => ({
      'result-type': type(i),
      'failed-session-count': (i % 7) + 1,
      ...(withIp ? { 'sending-mta-ip': `192.0.2.${i % 250}` } : {}),
    }));
  }
  function sumBy(list: Array<{ resultType: string; count: number }>): Map<string, number> {
    const by = new Map<string, number>();
    for (const r of list) by.set(r.resultType, (by.get(r.resultType) ?? 0) + r.count);
    return by;
  }

  test('1000 rows of a policy are all kept as sent', () => {
    const json = fixture();
    json.policies[0]['failure-details'] = rows(1000, () => 'certificate-expired');
    delete json.policies[0].summary['total-failure-session-count'];
    const { report, warnings } = reportFromWire(json);
    assert.equal(report.policies[0]!.failures.length, 1000);
    assert.ok(!warnings.some((w) => w.code === 'TLSRPT_FAILURE_ROWS_MERGED'));
  });

  test('200,000 rows: the first 1000 kept, the rest one row per result-type, every count exact', () => {
    const types = ['certificate-expired', 'dane-required', 'starttls-not-supported', 'x-private-type'];
    const wireRows = rows(200_000, (i) => types[i % types.length]!, false);
    const json = fixture();
    json.policies[0]['failure-details'] = wireRows;
    const total = wireRows.reduce((s, r) => s + r['failed-session-count'], 0);
    json.policies[0].summary['total-failure-session-count'] = total;
    const { report, warnings } = reportFromWire(json);
    const policy = report.policies[0]!;
    assert.equal(policy.failed, total);
    // 1000 kept + one merged row for each of the 3 RFC 8460 §4.3 types + one for the unknown type
    assert.equal(policy.failures.length, 1004);
    assert.deepEqual(
      policy.failures.slice(0, 1000),
      reportFromWire({
        ...json,
        policies: [{ ...json.policies[0], 'failure-details': wireRows.slice(0, 1000) }],
      }).report.policies[0]!.failures,
    );
    assert.equal(
      policy.failures.reduce((s, r) => s + r.count, 0),
      total,
    );
    const merged = policy.failures.slice(1000);
    const wireByType = sumBy(
      wireRows.slice(1000).map((r) => ({ resultType: r['result-type'], count: r['failed-session-count'] })),
    );
    for (const type of types.slice(0, 3)) {
      assert.equal(merged.find((r) => r.resultType === type)?.count, wireByType.get(type), type);
    }
    // RFC 8460 §4.3.1: validation-failure is the catch-all for reasons not listed.
    assert.equal(
      merged.find((r) => r.resultType === 'validation-failure')?.count,
      wireByType.get('x-private-type'),
    );
    for (const row of merged) assert.match(row.additionalInformation ?? '', /merged/);
    assert.equal(warnings.filter((w) => w.code === 'TLSRPT_FAILURE_ROWS_MERGED').length, 1);
    // 200,000 rows without sending-mta-ip and 50,000 unknown types: the warnings are capped too
    assert.ok(warnings.length <= 101, `${warnings.length} warnings`);
    assert.ok(warnings.some((w) => w.code === 'TLSRPT_TOO_MANY_WARNINGS'));
  });

  test('at most 10,000 rows are kept in a whole report; later policies are merged, counts exact', () => {
    const json = fixture();
    const one = json.policies[0];
    json.policies = Array.from({ length: 12 }, (_, p) => ({
      ...structuredClone(one),
      summary: { 'total-successful-session-count': 1, 'total-failure-session-count': 1000 * 4 },
      'failure-details': rows(1000, () => 'certificate-not-trusted').map((r) => ({
        ...r,
        'failed-session-count': 4,
        'receiving-mx-hostname': `mx${p}.example`,
      })),
    }));
    const { report } = reportFromWire(json);
    const kept = report.policies.flatMap((p) =>
      p.failures.filter((f) => !/merged/.test(f.additionalInformation ?? '')),
    );
    assert.equal(kept.length, 10_000);
    for (const p of report.policies) {
      assert.equal(p.failed, 4000);
      assert.equal(
        p.failures.reduce((s, r) => s + r.count, 0),
        4000,
      );
    }
    assert.equal(report.policies[11]!.failures.length, 1);
  });

  // Found by bench/fuzz.ts: a merged report written out (reportToWire) and read again had its merged
  // rows merged a second time, each note then saying "1 failure-details rows merged".
  test('a merged report read again is the same report (per policy and per report caps)', () => {
    const types = ['certificate-expired', 'x-private-type', 'dane-required', 'x-other'];
    const perPolicy = fixture();
    perPolicy.policies[0]['failure-details'] = rows(3000, (i) => types[i % types.length]!);
    delete perPolicy.policies[0].summary['total-failure-session-count'];
    const perReport = fixture();
    perReport.policies = Array.from({ length: 12 }, () => ({
      ...structuredClone(perReport.policies[0]),
      'failure-details': rows(1500, (i) => types[i % types.length]!),
    }));
    for (const policy of perReport.policies) delete policy.summary['total-failure-session-count'];
    for (const json of [perPolicy, perReport]) {
      const first = reportFromWire(json).report;
      const again = reportFromWire(JSON.parse(JSON.stringify(reportToWire(first)))).report;
      // isDeepStrictEqual, not assert.deepEqual: the diff of two 10,000-row reports takes minutes.
      const differing = first.policies.findIndex((p, i) => !isDeepStrictEqual(again.policies[i], p));
      assert.equal(differing, -1, `policy ${differing} changed when read again`);
      assert.ok(isDeepStrictEqual({ ...again, policies: [] }, { ...first, policies: [] }));
    }
    const merged = reportFromWire(perPolicy).report.policies[0]!.failures.slice(1000);
    assert.deepEqual(
      merged.map((f) => /^\d+/.exec(f.additionalInformation ?? '')?.[0]),
      ['500', '1000', '500'],
      'the notes say how many rows each merged row stands for',
    );
  });

  test('counts whose sum is not a safe integer are TLSRPT_BAD_COUNT', () => {
    const json = fixture();
    json.policies[0]['failure-details'] = rows(3, () => 'certificate-expired').map((r) => ({
      ...r,
      'failed-session-count': Number.MAX_SAFE_INTEGER,
    }));
    delete json.policies[0].summary['total-failure-session-count'];
    assert.equal(errorOf(json).code, 'TLSRPT_BAD_COUNT');
  });

  test('thousands of bad rows give a bounded list of problems', () => {
    const json = fixture();
    json.policies[0]['failure-details'] = Array.from({ length: 5000 }, () => ({ 'result-type': 7 }));
    const err = errorOf(json);
    assert.ok(err.problems.length <= 101, `${err.problems.length} problems`);
    assert.match(err.message, /more/);
  });
});

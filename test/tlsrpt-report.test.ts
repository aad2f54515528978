// TLS-RPT report JSON (RFC 8460 §4): strict on what makes a report, tolerant of real-world quirks.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { TlsRptError } from '../src/tlsrpt/error.js';
import { RESULT_TYPES, reportFromWire, reportToWire, type TlsReport } from '../src/tlsrpt/report.js';
import { type EditableJson, reportObject } from './fixtures/tlsrpt/build.js';

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

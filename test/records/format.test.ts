// src/records/format.ts: the record set as a BIND zone-file fragment and as Windows DNS cmdlets.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildRecordSet } from '../../src/records/build.js';
import { RecordsError } from '../../src/records/error.js';
import { formatRecords, recordsZone } from '../../src/records/format.js';

const set = buildRecordSet(
  {
    domain: 'mail.example.com',
    mode: 'enforce',
    maxAge: 604800,
    ttl: 300,
    mx: ['mx.example.com'],
    id: '20260101000000',
    rua: ["mailto:o'brien@example.com"],
    policyHostTargets: ['host.example.net'],
  },
  new Date('2026-01-01T00:00:00Z'),
);

describe('formatRecords', () => {
  it('bind: the policy as comments, one line per record, CNAME target absolute', () => {
    const text = formatRecords(set, 'bind');
    assert.match(text, /^; DNS records for mail\.example\.com/);
    assert.match(text, /^; {3}mode: enforce$/m);
    assert.match(text, /^_mta-sts\.mail\.example\.com\.\t300\tIN\tTXT\t"v=STSv1; id=20260101000000"$/m);
    assert.match(text, /^mta-sts\.mail\.example\.com\.\t300\tIN\tCNAME\thost\.example\.net\.$/m);
  });

  it('powershell: names relative to the zone, quotes doubled', () => {
    const text = formatRecords(set, 'powershell', 'Example.COM.');
    assert.match(text, /zone example\.com$/m);
    assert.match(text, /-ZoneName 'example\.com' -Name '_smtp\._tls\.mail' .*o''brien@example\.com/);
    assert.match(text, /-Name 'mta-sts\.mail' .*-HostNameAlias 'host\.example\.net'/);
    const own = formatRecords(set, 'powershell');
    assert.match(own, /-ZoneName 'mail\.example\.com' -Name '_mta-sts' /);
  });

  it('a zone that does not hold the domain is RECORDS_ZONE', () => {
    for (const zone of ['example.net', 'ail.example.com', 'x.mail.example.com']) {
      assert.throws(
        () => formatRecords(set, 'powershell', zone),
        (err: unknown) => err instanceof RecordsError && err.code === 'RECORDS_ZONE' && err.field === 'zone',
        zone,
      );
      assert.throws(() => recordsZone(set, zone), RecordsError, zone);
    }
    assert.equal(recordsZone(set, 'EXAMPLE.com.'), 'example.com');
  });
});

// `mxguard records DOMAIN` and `mxguard records validate` through the built command.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runCli } from '../helpers/cli.js';

interface RecordJson {
  name: string;
  type: string;
  ttl: number;
  value: string;
}
interface RecordSetJson {
  domain: string;
  policy: { text: string; url: string; mode: string; maxAge: number; mx: string[] };
  records: RecordJson[];
  notes: string[];
}

function recordsJson(args: string[]): RecordSetJson {
  const r = runCli(['records', ...args, '--format', 'json']);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as RecordSetJson;
}

function find(set: RecordSetJson, name: string, type: string): RecordJson[] {
  return set.records.filter((r) => r.name === name && r.type === type);
}

describe('records DOMAIN', () => {
  it('prints the _mta-sts, _smtp._tls and policy host records with a fixed id', () => {
    const set = recordsJson([
      'Example.COM.',
      '--mx',
      'mail.example.com',
      '--id',
      '20260101000000',
      '--rua',
      'mailto:tls@example.com',
      '--policy-host-target',
      '192.0.2.10',
      '--policy-host-target',
      '2001:db8::10',
    ]);
    assert.equal(set.domain, 'example.com');
    assert.deepEqual(
      find(set, '_mta-sts.example.com', 'TXT').map((r) => r.value),
      ['v=STSv1; id=20260101000000'],
    );
    assert.deepEqual(
      find(set, '_smtp._tls.example.com', 'TXT').map((r) => r.value),
      ['v=TLSRPTv1; rua=mailto:tls@example.com'],
    );
    assert.deepEqual(find(set, 'mta-sts.example.com', 'A')[0]?.value, '192.0.2.10');
    assert.deepEqual(find(set, 'mta-sts.example.com', 'AAAA')[0]?.value, '2001:db8::10');
    assert.equal(set.policy.url, 'https://mta-sts.example.com/.well-known/mta-sts.txt');
    assert.equal(set.policy.text, 'version: STSv1\nmode: testing\nmx: mail.example.com\nmax_age: 604800\n');
  });

  it('uses the current UTC time as the default id', () => {
    const before = utcStamp(new Date(Date.now() - 1000));
    const set = recordsJson(['example.com', '--mx', 'mail.example.com']);
    const after = utcStamp(new Date(Date.now() + 1000));
    const id = /^v=STSv1; id=(\d{14})$/.exec(find(set, '_mta-sts.example.com', 'TXT')[0]!.value)?.[1];
    assert.ok(id, 'id is a 14-digit timestamp');
    assert.ok(id >= before && id <= after, `${id} between ${before} and ${after}`);
    assert.ok(
      set.notes.some((n) => n.includes('--policy-host-target')),
      'missing host target is noted',
    );
  });

  it('uses a CNAME for a host-name target and refuses a CNAME beside addresses', () => {
    const set = recordsJson([
      'example.com',
      '--mx',
      'mx.example.com',
      '--policy-host-target',
      'me.github.io.',
    ]);
    assert.equal(find(set, 'mta-sts.example.com', 'CNAME')[0]?.value, 'me.github.io');
    const r = runCli([
      'records',
      'example.com',
      '--mx',
      'mx.example.com',
      '--policy-host-target',
      'me.github.io',
      '--policy-host-target',
      '192.0.2.1',
    ]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /CNAME target must be the only target/);
  });

  it('applies the exchange-online preset, SPF and DMARC', () => {
    const set = recordsJson(['example.com', '--preset', 'exchange-online', '--spf', '--dmarc', 'quarantine']);
    assert.deepEqual(set.policy.mx, ['*.mail.protection.outlook.com']);
    assert.equal(find(set, 'example.com', 'TXT')[0]?.value, 'v=spf1 include:spf.protection.outlook.com ~all');
    assert.equal(
      find(set, '_dmarc.example.com', 'TXT')[0]?.value,
      'v=DMARC1; p=quarantine; rua=mailto:dmarc@example.com',
    );
  });

  it('refuses *.mx.microsoft, which cannot cover <tenant>.<x>-v1.mx.microsoft', () => {
    const r = runCli(['records', 'example.com', '--preset', 'exchange-online', '--mx', '*.mx.microsoft']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /one label only/);
    const ok = recordsJson([
      'example.com',
      '--preset',
      'exchange-online',
      '--mx',
      'example-com.o-v1.mx.microsoft',
    ]);
    assert.deepEqual(ok.policy.mx, ['*.mail.protection.outlook.com', 'example-com.o-v1.mx.microsoft']);
  });

  it('applies the google-workspace preset', () => {
    const set = recordsJson(['example.com', '--preset', 'google-workspace', '--mode', 'enforce']);
    assert.deepEqual(set.policy.mx, ['smtp.google.com', 'aspmx.l.google.com', '*.aspmx.l.google.com']);
    assert.equal(set.policy.mode, 'enforce');
  });

  it('splits long TXT values into quoted strings of at most 255 bytes in bind format', () => {
    const includes = Array.from({ length: 20 }, (_, i) => `include:spf${i}.provider-number-${i}.example.net`);
    const r = runCli([
      'records',
      'example.com',
      '--mx',
      'mx.example.com',
      '--spf',
      `${includes.join(' ')} -all`,
    ]);
    assert.equal(r.code, 0, r.stderr);
    const line = r.stdout.split('\n').find((l) => l.startsWith('example.com.\t'));
    assert.ok(line, r.stdout);
    const strings = [...line.matchAll(/"([^"]*)"/g)].map((m) => m[1]!);
    assert.ok(strings.length >= 3, `split into ${strings.length} strings`);
    for (const s of strings) assert.ok(Buffer.byteLength(s) <= 255);
    assert.equal(strings.join(''), `v=spf1 ${includes.join(' ')} -all`);
  });

  it('prints PowerShell cmdlets with names relative to the zone', () => {
    const r = runCli([
      'records',
      'mail.example.com',
      '--zone',
      'example.com',
      '--mx',
      'mx.example.com',
      '--rua',
      "mailto:o'brien@example.com",
      '--policy-host-target',
      'host.example.net',
      '--format',
      'powershell',
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      /Add-DnsServerResourceRecord -ZoneName 'example.com' -Name '_mta-sts.mail' .* -Txt -DescriptiveText 'v=STSv1; id=\d{14}'/,
    );
    assert.match(r.stdout, /-Name '_smtp._tls.mail' .*'v=TLSRPTv1; rua=mailto:o''brien@example.com'/);
    assert.match(
      r.stdout,
      /Add-DnsServerResourceRecordCName -ZoneName 'example.com' -Name 'mta-sts.mail' .* -HostNameAlias 'host.example.net'/,
    );
  });

  it('rejects bad input with exit 2 and a line naming it', () => {
    const cases: Array<[string[], RegExp]> = [
      [['exa mple.com', '--mx', 'mx.example.com'], /not a valid domain/],
      [['example.com'], /--mx/],
      [['example.com', '--mx', 'mx.example.com', '--id', 'has-dash'], /--id/],
      [['example.com', '--mx', 'mx.example.com', '--max-age', '31557601'], /--max-age/],
      [['example.com', '--mx', 'mx.example.com', '--mode', 'strict'], /--mode/],
      [['example.com', '--mx', 'mx.example.com', '--rua', 'http://x.example/'], /--rua/],
      [['example.com', '--mx', 'mx_1.example.com'], /--mx/],
      [['example.com', '--preset', 'nope'], /--preset/],
      [['example.com', '--mx', 'mx.example.com', '--format', 'yaml'], /--format/],
    ];
    for (const [args, message] of cases) {
      const r = runCli(['records', ...args]);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, message, args.join(' '));
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    }
  });
});

describe('records validate', () => {
  const table: Array<[string, string, number]> = [
    ['mta-sts', 'v=STSv1; id=20260101000000', 0],
    ['mta-sts', 'v=STSv1; id=has-dash', 1],
    ['tlsrpt', 'v=TLSRPTv1; rua=mailto:tlsrpt@example.com', 0],
    ['tlsrpt', 'v=TLSRPTv1; rua=http://example.com/', 1],
    ['spf', 'v=spf1 ip4:192.0.2.0/24 -all', 0],
    ['spf', 'v=spf1 ip4:192.0.2.256 -all', 1],
    ['spf', ' v=spf1 -all', 1],
    ['dmarc', 'v=DMARC1; p=reject; rua=mailto:dmarc@example.com', 0],
    ['dmarc', 'v=DMARC1; p=bogus', 1],
    ['dkim', 'v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=', 0],
    ['dkim', 'v=DKIM1; k=rsa; p=not!base64', 1],
    ['tlsa', '3 1 1 0c72ac70b745ac19998811b131d662c9ac69dbdbe7cb23e5b514b56664c5d3d6', 0],
    ['tlsa', '3 1 1 0c72', 1],
  ];
  for (const [type, text, code] of table) {
    it(`${type} ${JSON.stringify(text)} exits ${code}`, () => {
      const r = runCli(['records', 'validate', '--type', type, '--', text]);
      assert.equal(r.code, code, r.stdout + r.stderr);
      assert.match(r.stdout, code === 0 ? /: valid$/m : /: invalid$/m);
      if (code === 1) assert.match(r.stdout, /error \[[A-Z0-9_]+\]/);
    });
  }

  it('accepts a record that starts with "-" after --', () => {
    const r = runCli(['records', 'validate', '--type', 'spf', '--', '-all']);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /invalid/);
  });

  it('joins zone-file quoted strings and says so', () => {
    const r = runCli([
      'records',
      'validate',
      '--type',
      'spf',
      '--json',
      '--',
      '"v=spf1 ip4:192.0.2.1" " -all"',
    ]);
    assert.equal(r.code, 0, r.stdout);
    const out = JSON.parse(r.stdout) as { valid: boolean; warnings: Array<{ code: string }> };
    assert.equal(out.valid, true);
    assert.ok(out.warnings.some((w) => w.code === 'TXT_QUOTED_INPUT'));
  });

  it('warns that TLSA usages 0 and 1 are unusable for SMTP', () => {
    const r = runCli([
      'records',
      'validate',
      '--type',
      'tlsa',
      '--json',
      '--',
      '1 1 1 0c72ac70b745ac19998811b131d662c9ac69dbdbe7cb23e5b514b56664c5d3d6',
    ]);
    assert.equal(r.code, 0);
    const out = JSON.parse(r.stdout) as { warnings: Array<{ code: string }> };
    assert.deepEqual(
      out.warnings.map((w) => w.code),
      ['TLSA_USAGE_UNUSABLE'],
    );
  });

  it('is a usage error for an unknown type', () => {
    const r = runCli(['records', 'validate', '--type', 'mx', '--', 'x']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown record type/);
  });
});

function utcStamp(d: Date): string {
  return d.toISOString().replace(/[-:T]/g, '').slice(0, 14);
}

// `mxguard policyd postfix-config` as users run it (the built dist/cli/main.js): the three parts in text, the
// same in --json, usage errors (exit 2, naming the option and the error code), and `policyd --help` showing the
// generated policyd lines. Build first: npx tsc -p tsconfig.json. Postfix running the output: test/policyd/
// postfix-smarthost-lab.test.ts.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runCli } from '../helpers/cli.js';

const relay = [
  '--relay-for',
  '10.0.0.5',
  '--relay-for',
  '2001:db8:5::/64',
  '--hostname',
  'relay.example.com',
];

describe('policyd postfix-config', () => {
  it('prints main.cf, master.cf and the Send Connector, each under its own heading', () => {
    const r = runCli(['policyd', 'postfix-config', ...relay]);
    assert.equal(r.code, 0, r.stderr);
    const parts = r.stdout.split(/^# ===== /m).slice(1);
    assert.deepEqual(
      parts.map((p) => p.split(' ')[0]),
      ['/etc/postfix/main.cf:', '/etc/postfix/master.cf', 'Exchange'],
    );
    assert.match(parts[0]!, /^mynetworks = 10\.0\.0\.5\/32 \[2001:db8:5::\]\/64$/m);
    assert.match(parts[0]!, /^smtp_tls_policy_maps = socketmap:inet:127\.0\.0\.1:8461:postfix$/m);
    assert.match(parts[1]!, /no change/);
    assert.match(parts[2]!, /^New-SendConnector .*-AddressSpaces '\*'/m);
    assert.match(parts[2]!, /-SmartHosts 'relay\.example\.com'/);
    assert.match(
      parts[2]!,
      /-RequireTLS \$true -TlsAuthLevel DomainValidation -TlsDomain 'relay\.example\.com'/,
    );
  });

  it('--json gives the same parts as fields; --policyd-socket adds the master.cf line', () => {
    const r = runCli([
      'policyd',
      'postfix-config',
      ...relay,
      '--policyd-socket',
      '/run/mxguard/policyd.sock',
      '--json',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const json = JSON.parse(r.stdout);
    assert.deepEqual(Object.keys(json).sort(), [
      'hostname',
      'mainCf',
      'masterCf',
      'policyMap',
      'relayFor',
      'sendConnector',
    ]);
    assert.deepEqual(json.relayFor, ['10.0.0.5/32', '[2001:db8:5::]/64']);
    assert.equal(json.policyMap, 'socketmap:unix:/run/mxguard/policyd.sock:postfix');
    assert.match(json.masterCf, /^smtp +unix +- +- +n +- +- +smtp$/m);
  });

  for (const [args, pattern] of [
    [['--hostname', 'relay.example.com'], /POSTFIX_CONFIG_NO_RELAY: .*--relay-for/],
    [
      ['--relay-for', '10.0.0.5/24', '--hostname', 'r.example.com'],
      /POSTFIX_CONFIG_CIDR_HOST_BITS: --relay-for 10\.0\.0\.5\/24: .*10\.0\.0\.0\/24/,
    ],
    [
      ['--relay-for', '0.0.0.0/0', '--hostname', 'r.example.com'],
      /POSTFIX_CONFIG_OPEN_RELAY: --relay-for 0\.0\.0\.0\/0/,
    ],
    [
      ['--relay-for', 'exchange01', '--hostname', 'r.example.com'],
      /POSTFIX_CONFIG_CIDR: --relay-for exchange01/,
    ],
    [['--relay-for', '10.0.0.5', '--hostname', 'relay'], /POSTFIX_CONFIG_HOSTNAME: --hostname relay/],
    [
      ['--relay-for', '10.0.0.5', '--hostname', 'r.example.com', '--policyd', 'x'],
      /POSTFIX_CONFIG_POLICYD: --policyd x/,
    ],
  ] as const) {
    it(`exit 2 for ${args.join(' ')}`, () => {
      const r = runCli(['policyd', 'postfix-config', ...args]);
      assert.equal(r.code, 2, r.stdout);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, /^mxguard: policyd postfix-config: /);
      assert.match(r.stderr, pattern);
      assert.doesNotMatch(r.stderr, /at .*\.js:\d+/, 'no stack trace');
    });
  }

  it('policyd --help shows the policyd main.cf lines, without comments after values', () => {
    const r = runCli(['policyd', '--help']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^ {2}smtp_dns_support_level = dnssec$/m);
    assert.match(r.stdout, /^ {2}smtp_tls_security_level = dane$/m);
    assert.match(r.stdout, /^ {2}smtp_tls_policy_maps = socketmap:inet:127\.0\.0\.1:8461:postfix$/m);
    assert.match(r.stdout, /^ {2}smtp_tls_loglevel = 1$/m);
    assert.match(r.stdout, /postfix-config/);
  });
});

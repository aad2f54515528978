// The Postfix smart-host configuration for Exchange 2019 outbound mail (src/policyd/postfix-config.ts): relay
// networks (IPv4, IPv6, host bits, open relay refused), host name and policyd endpoint checks with named errors,
// main.cf lines Postfix can read (no trailing comments), the Send Connector, and the policyd lines of
// docs/policyd.md being exactly the generated ones. The same configuration run by Postfix: postfix-smarthost-lab.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import {
  PostfixConfigError,
  type PostfixConfigErrorCode,
  type PostfixConfigInput,
  policydMainCf,
  postfixSmartHost,
} from '../../src/policyd/postfix-config.js';

const base: PostfixConfigInput = { relayFor: ['10.0.0.5'], hostname: 'relay.example.com' };

function refused(input: Partial<PostfixConfigInput>, code: PostfixConfigErrorCode, message?: RegExp) {
  assert.throws(
    () => postfixSmartHost({ ...base, ...input }),
    (err: unknown) => {
      assert.ok(err instanceof PostfixConfigError, String(err));
      assert.equal(err.code, code, err.message);
      if (message) assert.match(err.message, message);
      return true;
    },
  );
}

/** The main.cf settings as Postfix reads them: comment lines skipped, "name = value". */
function settings(mainCf: string): Map<string, string> {
  const map = new Map<string, string>();
  for (const line of mainCf.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z0-9_]+) = ?(.*)$/.exec(line);
    assert.ok(m, `not a main.cf setting: ${line}`);
    map.set(m[1]!, m[2]!);
  }
  return map;
}

/** main.cf(5): "#" starts a comment only at the start of a line; after a value it is part of the value. */
function trailingComments(mainCf: string): string[] {
  return mainCf.split('\n').filter((line) => !line.trimStart().startsWith('#') && line.includes('#'));
}

describe('policyd postfix-config: relay networks', () => {
  it('writes several relays, IPv4 and IPv6, as mynetworks wants them (IPv6 in brackets, RFC 5952 text)', () => {
    const config = postfixSmartHost({
      ...base,
      relayFor: ['10.0.0.5', '192.168.10.0/24', '2001:DB8:0:0:1::/80', '2001:db8::7', '::ffff:10.1.2.0/120'],
    });
    assert.deepEqual(config.relayFor, [
      '10.0.0.5/32',
      '192.168.10.0/24',
      '[2001:db8:0:0:1::]/80',
      '[2001:db8::7]/128',
      '[::ffff:a01:200]/120',
    ]);
    assert.equal(settings(config.mainCf).get('mynetworks'), config.relayFor.join(' '));
  });

  it('lists a network given twice once', () => {
    const config = postfixSmartHost({
      ...base,
      relayFor: ['10.0.0.5', '10.0.0.5/32', '2001:db8::/64', '2001:0db8::/64'],
    });
    assert.deepEqual(config.relayFor, ['10.0.0.5/32', '[2001:db8::]/64']);
  });

  for (const [text, code, message] of [
    ['10.0.0.0/33', 'POSTFIX_CONFIG_CIDR', /longer than 32 bits/],
    ['2001:db8::/129', 'POSTFIX_CONFIG_CIDR', /longer than 128 bits/],
    ['10.0.0', 'POSTFIX_CONFIG_CIDR', /IPv4 or IPv6/],
    ['010.0.0.1', 'POSTFIX_CONFIG_CIDR', /IPv4 or IPv6/],
    ['exchange.example.com', 'POSTFIX_CONFIG_CIDR', /IPv4 or IPv6/],
    ['10.0.0.0/8/1', 'POSTFIX_CONFIG_CIDR', /IPv4 or IPv6/],
    ['10.0.0.0/', 'POSTFIX_CONFIG_CIDR', /IPv4 or IPv6/],
    ['10.0.0.0/-1', 'POSTFIX_CONFIG_CIDR', /IPv4 or IPv6/],
    ['fe80::1%eth0', 'POSTFIX_CONFIG_CIDR', /IPv4 or IPv6/],
    ['', 'POSTFIX_CONFIG_CIDR', /IPv4 or IPv6/],
    ['10.0.0.5/24', 'POSTFIX_CONFIG_CIDR_HOST_BITS', /did you mean 10\.0\.0\.0\/24/],
    ['2001:db8::1/64', 'POSTFIX_CONFIG_CIDR_HOST_BITS', /did you mean 2001:db8::\/64/],
    ['0.0.0.0/0', 'POSTFIX_CONFIG_OPEN_RELAY', /internet/],
    ['10.0.0.0/7', 'POSTFIX_CONFIG_OPEN_RELAY', /at least \/8/],
    ['::/0', 'POSTFIX_CONFIG_OPEN_RELAY', /at least \/16/],
    ['2000::/3', 'POSTFIX_CONFIG_OPEN_RELAY', /internet/],
  ] as const) {
    it(`refuses --relay-for "${text}" with ${code}, naming it`, () => {
      refused({ relayFor: ['10.0.0.5', text] }, code, message);
      refused(
        { relayFor: [text] },
        code,
        new RegExp(`--relay-for ${text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}`),
      );
    });
  }

  it('refuses a configuration without relay networks', () => {
    refused({ relayFor: [] }, 'POSTFIX_CONFIG_NO_RELAY', /--relay-for/);
  });

  it('relays for those networks only: no mail for local or other domains, everyone else refused', () => {
    const s = settings(postfixSmartHost(base).mainCf);
    assert.equal(s.get('mydestination'), '');
    assert.equal(s.get('relay_domains'), '');
    assert.equal(s.get('smtpd_client_restrictions'), 'permit_mynetworks, reject');
    assert.equal(s.get('smtpd_relay_restrictions'), 'permit_mynetworks, reject_unauth_destination');
  });
});

describe('policyd postfix-config: host name and policyd endpoint', () => {
  it('normalises the host name (case, trailing dot) and uses it in main.cf and the Send Connector', () => {
    const config = postfixSmartHost({ ...base, hostname: 'Relay.Example.COM.' });
    assert.equal(config.hostname, 'relay.example.com');
    assert.equal(settings(config.mainCf).get('myhostname'), 'relay.example.com');
    assert.match(config.sendConnector, /-SmartHosts 'relay\.example\.com'/);
  });

  for (const name of [
    'relay',
    '10.0.0.1',
    'bad_name.example.com',
    '-relay.example.com',
    'a..example.com',
    "x'.example.com",
  ]) {
    it(`refuses --hostname "${name}"`, () => {
      refused({ hostname: name }, 'POSTFIX_CONFIG_HOSTNAME', /--hostname/);
    });
  }

  it('asks policyd at its default listener unless told otherwise', () => {
    assert.equal(postfixSmartHost(base).policyMap, 'socketmap:inet:127.0.0.1:8461:postfix');
    assert.equal(
      postfixSmartHost({ ...base, policyd: '[::1]:9461' }).policyMap,
      'socketmap:inet:[::1]:9461:postfix',
    );
    assert.equal(
      postfixSmartHost({ ...base, policyd: 'policyd.example.com:8461' }).policyMap,
      'socketmap:inet:policyd.example.com:8461:postfix',
    );
  });

  it('asks policyd over its UNIX socket with --policyd-socket, and runs smtp(8) outside the chroot', () => {
    const config = postfixSmartHost({ ...base, policydSocket: '/run/mxguard/policyd.sock' });
    assert.equal(
      settings(config.mainCf).get('smtp_tls_policy_maps'),
      'socketmap:unix:/run/mxguard/policyd.sock:postfix',
    );
    assert.match(config.masterCf, /^smtp {6}unix {2}- {7}- {7}n {7}- {7}- {7}smtp$/m);
    assert.equal(postfixSmartHost(base).masterCf, '', 'with TCP the default master.cf does');
  });

  for (const policyd of [
    '127.0.0.1',
    '127.0.0.1:0',
    '127.0.0.1:65536',
    'bad_host:8461',
    '[example.com]:8461',
    ':8461',
  ]) {
    it(`refuses --policyd "${policyd}"`, () => {
      refused({ policyd }, 'POSTFIX_CONFIG_POLICYD', /--policyd/);
    });
  }
  for (const policydSocket of ['policyd.sock', '/run/my policyd.sock', '/run/a:b', '/run/a,b']) {
    it(`refuses --policyd-socket "${policydSocket}"`, () => {
      refused({ policydSocket }, 'POSTFIX_CONFIG_SOCKET', /--policyd-socket/);
    });
  }
  it('refuses --policyd with --policyd-socket', () => {
    refused(
      { policyd: '127.0.0.1:8461', policydSocket: '/run/p.sock' },
      'POSTFIX_CONFIG_POLICYD',
      /not both/,
    );
  });
});

describe('policyd postfix-config: what Postfix and Exchange get', () => {
  const config = postfixSmartHost({ ...base, relayFor: ['10.0.0.5', '2001:db8::/64'] });

  it('main.cf has DANE with DNSSEC, policyd for MTA-STS, TLS session logging, and STARTTLS required inbound', () => {
    const s = settings(config.mainCf);
    assert.equal(s.get('smtp_dns_support_level'), 'dnssec');
    assert.equal(s.get('smtp_tls_security_level'), 'dane');
    assert.equal(s.get('smtp_tls_policy_maps'), 'socketmap:inet:127.0.0.1:8461:postfix');
    assert.equal(s.get('smtp_tls_loglevel'), '1');
    assert.equal(s.get('smtpd_tls_security_level'), 'encrypt');
    assert.equal(s.get('message_size_limit'), String(35 * 1024 * 1024));
  });

  it('main.cf has no comment after a value (main.cf(5) would read it as part of the value)', () => {
    assert.deepEqual(trailingComments(config.mainCf), []);
    assert.deepEqual(trailingComments(config.masterCf), []);
  });

  it('main.cf sets each parameter once', () => {
    const names = config.mainCf
      .split('\n')
      .filter((l) => l !== '' && !l.startsWith('#'))
      .map((l) => l.split(' ')[0]);
    assert.deepEqual(names, [...new Set(names)]);
  });

  it('the Send Connector routes every domain through the smart host over TLS, checking its certificate name', () => {
    const ps = config.sendConnector.replace(/`\n\s*/g, '');
    const command = ps.split('\n').find((l) => l.startsWith('New-SendConnector'));
    assert.ok(command, ps);
    for (const part of [
      "-AddressSpaces '*'",
      "-SmartHosts 'relay.example.com'",
      '-DNSRoutingEnabled $false',
      '-RequireTLS $true',
      '-TlsAuthLevel DomainValidation',
      "-TlsDomain 'relay.example.com'",
    ]) {
      assert.ok(command.includes(part), `${part} missing in: ${command}`);
    }
  });
});

describe('policyd postfix-config: docs/policyd.md and the generator agree', () => {
  const doc = readFileSync(new URL('../../docs/policyd.md', import.meta.url), 'utf8');
  const section = doc.slice(doc.indexOf('## Postfix `main.cf`'), doc.indexOf('## Answers'));

  it('the main.cf snippet of docs/policyd.md is the generated policyd block, verbatim', () => {
    assert.ok(
      section.includes(`\`\`\`\n${policydMainCf()}`),
      `docs/policyd.md "Postfix main.cf" does not show:\n${policydMainCf()}`,
    );
  });

  it('no main.cf snippet in docs/policyd.md has a comment after a value', () => {
    const blocks = [...doc.matchAll(/```\n([\s\S]*?)```/g)]
      .map((m) => m[1]!)
      .filter((b) => /^smtp_\w+ = /m.test(b));
    assert.ok(blocks.length > 0);
    for (const block of blocks) assert.deepEqual(trailingComments(block), []);
  });
});

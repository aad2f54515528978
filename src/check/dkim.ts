// The DKIM section of `mxguard check` (RFC 6376 §3.6.1, RFC 8301, RFC 8463): the key record of each
// selector given (`--dkim-selector`, and the preset's), at `<selector>._domainkey.<domain>`. Selectors
// cannot be discovered from DNS, so without any the section is skipped. A CNAME to a provider's
// record (Microsoft and Google publish keys that way) is followed by the resolver.
import { DkimError } from '../dkim/error.js';
import { parseDkimKey } from '../dkim/record.js';
import { normalizeName } from '../dns/names.js';
import { lookupTxt } from './lookup.js';
import { type CheckEnvironment, type Finding, finding, type Status } from './types.js';

export async function checkDkim(domain: string, env: CheckEnvironment): Promise<Finding[]> {
  const name = normalizeName(domain);
  const selectors = [...new Set(env.dkimSelectors.map((s) => normalizeName(s.trim())))].filter(
    (s) => s !== '',
  );
  if (selectors.length === 0) {
    return [
      finding(
        'dkim',
        'skip',
        'DKIM_NO_SELECTORS',
        'no DKIM selector given: selectors cannot be listed from DNS; name the ones your signers use with ' +
          "--dkim-selector NAME (a --preset adds its provider's selectors)",
      ),
    ];
  }
  const results = await Promise.all(selectors.map((s) => checkSelector(name, s, env)));
  return results.flat();
}

async function checkSelector(domain: string, selector: string, env: CheckEnvironment): Promise<Finding[]> {
  const owner = `${selector}._domainkey.${domain}`;
  const out: Finding[] = [];
  const add = (status: Status, code: string, message: string, fix?: string) =>
    out.push(finding('dkim', status, code, message, fix === undefined ? {} : { fix }));
  const newKey =
    `publish the public key your signer uses for selector "${selector}":\n` +
    `${owner}. IN TXT "v=DKIM1; k=rsa; p=<base64 public key, 2048 bits>"`;

  const answer = await lookupTxt(env.resolver, owner);
  if (answer.kind === 'failed') {
    add('fail', 'DKIM_DNS', `selector "${selector}": ${answer.reason}; verifiers get a temporary error`);
    return out;
  }
  if (answer.kind === 'empty') {
    add(
      'warn',
      'DKIM_KEY_MISSING',
      `selector "${selector}": ${owner} has no TXT record (${answer.outcome.toUpperCase()}); mail signed with it fails DKIM`,
      newKey,
    );
    return out;
  }
  const via =
    answer.result.cnameChain.length > 0 ? ` (via CNAME ${answer.result.cnameChain.join(' -> ')})` : '';
  if (answer.records.length > 1) {
    add(
      'warn',
      'DKIM_MULTIPLE',
      `selector "${selector}": ${owner}${via} has ${answer.records.length} TXT records; RFC 6376 §3.6.2.2 lets ` +
        'verifiers pick any of them, so signatures verify only sometimes',
      'keep exactly one key record per selector; use a new selector for a new key',
    );
  }
  for (const text of answer.records) {
    try {
      const { record, warnings } = parseDkimKey(text);
      for (const w of warnings) {
        const where = w.where ? `${w.where}: ` : '';
        const message = `selector "${selector}"${via}: ${where}${w.message}`;
        switch (w.code) {
          case 'DKIM_KEY_REVOKED':
            add('info', 'DKIM_KEY_REVOKED', message);
            break;
          case 'DKIM_TESTING':
            add('warn', 'DKIM_TESTING', message, `remove t=y from ${owner} once signatures verify`);
            break;
          case 'DKIM_KEY_WEAK':
            add(
              'warn',
              'DKIM_KEY_WEAK',
              message,
              'generate a 2048-bit key, publish it under a new selector, switch the signer to it, then revoke ' +
                `this one by publishing "p=" empty at ${owner}`,
            );
            break;
          default:
            add(
              w.severity === 'note' ? 'info' : 'warn',
              w.severity === 'note' ? 'DKIM_NOTE' : 'DKIM_WARNING',
              message,
            );
        }
      }
      if (!record.revoked) {
        add(
          'pass',
          'DKIM_KEY',
          `selector "${selector}"${via}: ${record.keyType} key of ${record.keyBits} bits`,
        );
      }
    } catch (err) {
      if (!(err instanceof DkimError)) throw err;
      add(
        'fail',
        'DKIM_KEY_INVALID',
        `selector "${selector}"${via}: the key record is invalid, signatures with it fail: ${err.message}`,
        newKey,
      );
    }
  }
  return out;
}

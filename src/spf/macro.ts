// SPF macro expansion (RFC 7208 §7) of a domain-spec for check_host() (src/spf/evaluate.ts): %{s} %{l} %{o}
// %{d} %{i} %{v} with their transformers (a digit count of labels kept from the right, "r" to reverse) and
// delimiters, %% %_ %-, upper-case letters URL-escaped (§7.3). %{h} (the HELO name) and %{p} (a validated
// reverse name) need what an evaluation outside an SMTP session does not have: such a spec does not expand.
// The record parser (record.ts) has already refused malformed macros.
import { ipValue } from '../common/ip.js';

/** What the macros of one evaluation stand for. */
export interface MacroValues {
  /** The sender's local-part (%{l}) and domain (%{o}); %{s} is both. */
  local: string;
  senderDomain: string;
  /** The domain check_host() is evaluating now (%{d}). */
  domain: string;
  /** The client address (%{i}, %{v}). */
  ip: string;
  family: 4 | 6;
}

/** RFC 7208 §7.3: an expanded name longer than this loses labels from the left. */
const DOMAIN_MAX = 253;

/** The expansion of `spec`, or undefined when it uses %{h} or %{p}. */
export function expandMacros(spec: string, values: MacroValues): string | undefined {
  let unsupported = false;
  const expanded = spec.replace(
    /%(?:\{([A-Za-z])(\d*)([rR]?)([-.+,/_=]*)\}|([%_-]))/g,
    (_, letter, digits, reverse, delims, escaped) => {
      if (escaped !== undefined) return escaped === '%' ? '%' : escaped === '_' ? ' ' : '%20';
      const value = macroValue(String(letter).toLowerCase(), values);
      if (value === undefined) {
        unsupported = true;
        return '';
      }
      // RFC 7208 §7.3: split on the delimiters (default "."), reverse on "r", keep the rightmost N, join with ".".
      const split = new RegExp(`[${(delims || '.').replace(/[-\\/]/g, '\\$&')}]`);
      let parts = value.split(split);
      if (reverse) parts = parts.reverse();
      if (digits) parts = parts.slice(-Number(digits));
      const text = parts.join('.');
      return letter === String(letter).toUpperCase() ? encodeURIComponent(text) : text;
    },
  );
  if (unsupported) return undefined;
  let out = expanded;
  // RFC 7208 §7.3: a name over 253 characters loses labels from the left until it fits.
  while (out.length > DOMAIN_MAX && out.includes('.')) out = out.slice(out.indexOf('.') + 1);
  return out;
}

function macroValue(letter: string, v: MacroValues): string | undefined {
  switch (letter) {
    case 's':
      return `${v.local}@${v.senderDomain}`;
    case 'l':
      return v.local;
    case 'o':
      return v.senderDomain;
    case 'd':
      return v.domain;
    case 'i':
      return v.family === 4 ? v.ip : ipv6Nibbles(v.ip);
    case 'v':
      return v.family === 4 ? 'in-addr' : 'ip6';
    default:
      return undefined;
  }
}

/** RFC 7208 §7.3: %{i} of an IPv6 client is its 32 nibbles, dot-separated, most significant first. */
function ipv6Nibbles(ip: string): string {
  const value = ipValue(ip)?.value ?? 0n;
  return [...value.toString(16).padStart(32, '0')].join('.');
}

// SPF record parser and formatter: RFC 7208 (Sender Policy Framework, version 1).
// Checks the syntax of one record (§4.5 version, §4.6.1 terms, §5 mechanisms, §6 modifiers,
// §7.1 macro-string and domain-spec; ABNF collected in §12) and flags risky but legal choices.
// Nothing here queries DNS: `dnsLookupTerms` hands the lookup-causing terms to the audit.

import { type Problem, problem } from '../common/errors.js';
import { shown } from '../common/text.js';
import { SpfError, type SpfErrorCode } from './error.js';

export type SpfQualifier = '+' | '-' | '~' | '?';
export type SpfMechanismName = 'all' | 'include' | 'a' | 'mx' | 'ptr' | 'ip4' | 'ip6' | 'exists';

export interface SpfMechanism {
  kind: 'mechanism';
  /** '+' when the record gives no qualifier (RFC 7208 §4.6.2). */
  qualifier: SpfQualifier;
  name: SpfMechanismName;
  /** Target of include/exists (required) and a/mx/ptr (optional), macros unexpanded. */
  domainSpec?: string;
  /** Address of ip4/ip6, as written. */
  ip?: string;
  /** Prefix length for IPv4 matches (ip4, a, mx). */
  cidr4?: number;
  /** Prefix length for IPv6 matches (ip6, a, mx). */
  cidr6?: number;
}

export interface SpfModifier {
  kind: 'modifier';
  /** Lower-cased: modifier names are case-insensitive. */
  name: string;
  value: string;
}

export type SpfTerm = SpfMechanism | SpfModifier;

export interface SpfRecord {
  terms: SpfTerm[];
}

export interface SpfParseResult {
  record: SpfRecord;
  /** Severity 'warning' or 'note'; errors are thrown as SpfError. */
  warnings: Problem[];
}

const MECHANISM_NAMES: readonly string[] = ['all', 'include', 'a', 'mx', 'ptr', 'ip4', 'ip6', 'exists'];
const LOOKUP_MECHANISMS: readonly string[] = ['include', 'a', 'mx', 'ptr', 'exists'];
/** RFC 7208 §4.6.4: at most 10 terms that cause DNS lookups. */
export const SPF_MAX_DNS_LOOKUPS = 10;
/** RFC 7208 §4.6.4: void lookups allowed per evaluation (a default of two is RECOMMENDED). */
export const SPF_MAX_VOID_LOOKUPS = 2;
/** RFC 7208 §4.6.4: MX names whose addresses an mx mechanism may look up. */
export const SPF_MAX_MX_NAMES = 10;

// RFC 7208 §4.5: the version section is "v=spf1" (case-insensitive) ended by SP or the end of the record.
const VERSION = /^v=spf1(?= |$)/i;
// RFC 7208 §4.6.1: modifier = name "=" macro-string; name = ALPHA *( ALPHA / DIGIT / "-" / "_" / "." )
const MODIFIER = /^([A-Za-z][A-Za-z0-9_.-]*)=(.*)$/s;
const MECHANISM = /^([-+~?]?)([A-Za-z][A-Za-z0-9]*)(.*)$/s;

/**
 * Parse one SPF TXT record (the character-strings already joined without separators).
 * Throws SpfError listing every syntax error; returns warnings and notes otherwise.
 */
export function parseSpf(text: string): SpfParseResult {
  if (text.trim() === '') {
    throw toError([
      problem('error', 'SPF_EMPTY', 'empty record: an SPF record begins with "v=spf1"', 'version'),
    ]);
  }
  if (!VERSION.test(text)) {
    throw toError([
      problem(
        'error',
        'SPF_VERSION',
        `not an SPF version 1 record: it must begin with "v=spf1" followed by a space or the end (RFC 7208 §4.5), got "${shown(text, 20)}"`,
        'version',
      ),
    ]);
  }
  const errors: Problem[] = [];
  const warnings: Problem[] = [];
  const terms: SpfTerm[] = [];
  const places: string[] = [];
  // RFC 7208 §4.6.1: terms = *( 1*SP ( directive / modifier ) ), record = version terms *SP
  const words = text
    .slice('v=spf1'.length)
    .split(' ')
    .filter((w) => w !== '');
  words.forEach((word, i) => {
    const where = `term ${i + 1} (${shown(word, 40)})`;
    const check = new TermCheck(where, errors, warnings);
    const term = check.term(word);
    if (term) {
      terms.push(term);
      places.push(where);
    }
  });
  checkModifierCounts(terms, places, errors);
  if (errors.length > 0) throw toError(errors, warnings);
  const record = { terms };
  warnings.push(...policyWarnings(record, places));
  return { record, warnings };
}

/** The terms that cost a DNS lookup and count toward the limit of 10 (RFC 7208 §4.6.4). */
export function dnsLookupTerms(record: SpfRecord): SpfTerm[] {
  return record.terms.filter((t) =>
    t.kind === 'mechanism' ? LOOKUP_MECHANISMS.includes(t.name) : t.name === 'redirect',
  );
}

/** The record text for a parsed (or built) record: qualifier '+' is left out, as it is the default. */
export function formatSpf(record: SpfRecord): string {
  return ['v=spf1', ...record.terms.map(formatTerm)].join(' ');
}

/**
 * Check the text of an explanation TXT record (the target of exp=): RFC 7208 §6.2 / §7.1
 * explain-string = *( macro-string / SP ); here the letters c, r and t are allowed too (§7.2).
 * Throws SpfError when a receiver would discard the explanation.
 */
export function validateSpfExplanation(text: string): void {
  const errors: Problem[] = [];
  for (const piece of text.split(' ')) scanMacroString(piece, true, 'explanation', errors);
  if (errors.length > 0) throw toError(errors);
}

function formatTerm(term: SpfTerm): string {
  if (term.kind === 'modifier') return `${term.name}=${term.value}`;
  let text = (term.qualifier === '+' ? '' : term.qualifier) + term.name;
  if (term.domainSpec !== undefined) text += `:${term.domainSpec}`;
  if (term.ip !== undefined) text += `:${term.ip}`;
  if (term.name === 'ip6') {
    if (term.cidr6 !== undefined) text += `/${term.cidr6}`;
  } else {
    if (term.cidr4 !== undefined) text += `/${term.cidr4}`;
    if (term.cidr6 !== undefined) text += `//${term.cidr6}`;
  }
  return text;
}

/** Parses one term, adding errors (and domain warnings) for the place `where`. */
class TermCheck {
  constructor(
    private readonly where: string,
    private readonly errors: Problem[],
    private readonly warnings: Problem[],
  ) {}

  private fail(code: SpfErrorCode, message: string): undefined {
    this.errors.push(problem('error', code, message, this.where));
    return undefined;
  }

  term(word: string): SpfTerm | undefined {
    const bad = /[^\x21-\x7e]/u.exec(word);
    if (bad) {
      return this.fail(
        'SPF_CHARSET',
        `character "${shown(bad[0])}" is not allowed: terms are printable ASCII separated by spaces only (RFC 7208 §3.1, §4.6.1)`,
      );
    }
    const modifier = MODIFIER.exec(word);
    if (modifier) return this.modifier(modifier[1]!.toLowerCase(), modifier[2]!);
    return this.mechanism(word);
  }

  // RFC 7208 §6: redirect= and exp= take a domain-spec; unknown modifiers a macro-string.
  private modifier(name: string, value: string): SpfModifier | undefined {
    if (name === 'redirect' || name === 'exp') {
      if (value === '') return this.fail('SPF_DOMAIN_SPEC', `${name}= needs a domain (RFC 7208 §6)`);
      if (!this.domainSpec(value)) return undefined;
    } else if (!scanMacroString(value, false, this.where, this.errors)) {
      return undefined;
    }
    return { kind: 'modifier', name, value };
  }

  private mechanism(word: string): SpfMechanism | undefined {
    const m = MECHANISM.exec(word);
    if (!m) {
      return this.fail(
        'SPF_UNKNOWN_TERM',
        `"${shown(word)}" is neither a mechanism nor a modifier (RFC 7208 §4.6.1)`,
      );
    }
    const qualifier = (m[1] || '+') as SpfQualifier;
    const name = m[2]!.toLowerCase();
    const rest = m[3]!;
    if (!MECHANISM_NAMES.includes(name)) {
      if (m[1] && MODIFIER.test(word.slice(1))) {
        return this.fail('SPF_UNKNOWN_TERM', `modifier "${m[2]}=" cannot have a qualifier (RFC 7208 §4.6.1)`);
      }
      const hint =
        name === 'redirect' || name === 'exp' ? ` (${name} is a modifier: write ${name}=domain)` : '';
      return this.fail('SPF_UNKNOWN_TERM', `unknown mechanism "${m[2]}"${hint} (RFC 7208 §5)`);
    }
    const mechanism: SpfMechanism = { kind: 'mechanism', qualifier, name: name as SpfMechanismName };
    const ok = this.readArguments(mechanism, rest);
    return ok ? mechanism : undefined;
  }

  /** Fills in the mechanism's arguments from the text after its name; false on error. */
  private readArguments(mech: SpfMechanism, rest: string): boolean {
    const before = this.errors.length;
    switch (mech.name) {
      // RFC 7208 §5.1: all = "all"
      case 'all':
        if (rest !== '') this.fail('SPF_MECHANISM_SYNTAX', `"all" takes no argument, found "${shown(rest)}"`);
        break;
      // RFC 7208 §5.2, §5.7: include / exists = name ":" domain-spec
      case 'include':
      case 'exists':
        if (!rest.startsWith(':')) {
          this.fail('SPF_MECHANISM_SYNTAX', `"${mech.name}" needs ":domain" (RFC 7208 §5)`);
        } else if (this.domainSpec(rest.slice(1), mech.name)) {
          mech.domainSpec = rest.slice(1);
        }
        break;
      // RFC 7208 §5.5: ptr = "ptr" [ ":" domain-spec ]
      case 'ptr':
        if (rest.startsWith(':')) {
          if (this.domainSpec(rest.slice(1), 'ptr')) mech.domainSpec = rest.slice(1);
        } else if (rest !== '') {
          this.fail('SPF_MECHANISM_SYNTAX', `"ptr" takes only ":domain", found "${shown(rest)}"`);
        }
        break;
      // RFC 7208 §5.3, §5.4: a / mx = name [ ":" domain-spec ] [ dual-cidr-length ]
      case 'a':
      case 'mx':
        this.hostMechanism(mech, rest);
        break;
      // RFC 7208 §5.6: ip4 = "ip4" ":" ip4-network [ ip4-cidr-length ], same for ip6
      case 'ip4':
      case 'ip6':
        this.ipMechanism(mech, rest);
        break;
    }
    return this.errors.length === before;
  }

  private hostMechanism(mech: SpfMechanism, rest: string): void {
    if (rest !== '' && !rest.startsWith(':') && !rest.startsWith('/')) {
      this.fail('SPF_MECHANISM_SYNTAX', `unexpected "${shown(rest)}" after "${mech.name}"`);
      return;
    }
    const { head, cidr4, cidr6 } = splitDualCidr(rest.startsWith(':') ? rest.slice(1) : rest);
    if (rest.startsWith(':')) {
      if (this.domainSpec(head, mech.name)) mech.domainSpec = head;
    } else if (head !== '') {
      this.fail('SPF_CIDR', `malformed CIDR length "${shown(rest)}": use /N for IPv4 and //N for IPv6`);
    }
    const v4 = cidr4 === undefined ? undefined : this.cidr(cidr4, 32);
    const v6 = cidr6 === undefined ? undefined : this.cidr(cidr6, 128);
    if (v4 !== undefined) mech.cidr4 = v4;
    if (v6 !== undefined) mech.cidr6 = v6;
  }

  private ipMechanism(mech: SpfMechanism, rest: string): void {
    const family = mech.name === 'ip4' ? 'IPv4' : 'IPv6';
    if (!rest.startsWith(':')) {
      this.fail('SPF_MECHANISM_SYNTAX', `"${mech.name}" needs ":<${family} address>" (RFC 7208 §5.6)`);
      return;
    }
    const arg = rest.slice(1);
    const slash = arg.indexOf('/');
    const address = slash < 0 ? arg : arg.slice(0, slash);
    if (mech.name === 'ip4' && !isIp4(address)) {
      this.fail(
        'SPF_IP4',
        `"${shown(address)}" is not an IPv4 address (four numbers 0-255, no leading zeros)`,
      );
    } else if (mech.name === 'ip6' && !isIp6(address)) {
      this.fail('SPF_IP6', `"${shown(address)}" is not an IPv6 address (RFC 4291 §2.2)`);
    } else {
      mech.ip = address;
    }
    if (slash < 0) return;
    const length = this.cidr(arg.slice(slash + 1), mech.name === 'ip4' ? 32 : 128);
    if (length === undefined) return;
    if (mech.name === 'ip4') mech.cidr4 = length;
    else mech.cidr6 = length;
  }

  // RFC 7208 §5.6: ip4-cidr-length = "/" ("0" / %x31-39 0*1DIGIT), value 0-32; ip6 likewise 0-128.
  private cidr(text: string, max: number): number | undefined {
    if (!/^\d+$/.test(text)) return this.fail('SPF_CIDR', `CIDR length "/${shown(text)}" is not a number`);
    if (text.length > 1 && text.startsWith('0')) {
      return this.fail('SPF_CIDR', `CIDR length "/${text}" has a leading zero (RFC 7208 §5.6)`);
    }
    const value = Number(text);
    if (value > max) return this.fail('SPF_CIDR', `CIDR length /${text} is over ${max} (RFC 7208 §5.6)`);
    return value;
  }

  // RFC 7208 §7.1: domain-spec = macro-string domain-end; domain-end = ( "." toplabel [ "." ] ) / macro-expand
  private domainSpec(spec: string, after?: string): boolean {
    if (spec === '') {
      this.fail('SPF_DOMAIN_SPEC', `empty domain after "${after}:" (there must be no space after ":")`);
      return false;
    }
    const scan = scanMacroString(spec, false, this.where, this.errors);
    if (!scan) return false;
    if (scan.endsWithMacro) return true;
    const tail = scan.trailingLiteral.endsWith('.')
      ? scan.trailingLiteral.slice(0, -1)
      : scan.trailingLiteral;
    const dot = tail.lastIndexOf('.');
    if (dot < 0 && !scan.hasMacro && isToplabel(tail)) {
      // Strict RFC 7208 ABNF needs a dot; mox and others accept a single label, so this only warns.
      this.warnings.push(
        problem(
          'warning',
          'SPF_DOMAIN_NOT_FQDN',
          `"${spec}" is a single label: RFC 7208 §7.1 wants "." and a top-level label at the end, and strict receivers return permerror`,
          this.where,
        ),
      );
      return true;
    }
    const top = dot < 0 ? tail : tail.slice(dot + 1);
    if (dot < 0 || !isToplabel(top)) {
      this.fail(
        'SPF_DOMAIN_SPEC',
        `"${shown(spec)}" must end in a macro or in "." and a top-level label (letters, digits, inner hyphens, not all digits), not "${shown(top)}" (RFC 7208 §7.1)`,
      );
      return false;
    }
    return true;
  }
}

/** Splits a trailing dual-cidr-length ("/N", "//N" or "/N//M") off `text`. */
function splitDualCidr(text: string): { head: string; cidr4?: string; cidr6?: string } {
  let head = text;
  let cidr6: string | undefined;
  let cidr4: string | undefined;
  const v6 = /\/\/(\d*)$/.exec(head);
  if (v6) {
    cidr6 = v6[1]!;
    head = head.slice(0, v6.index);
  }
  const v4 = /\/(\d*)$/.exec(head);
  if (v4) {
    cidr4 = v4[1]!;
    head = head.slice(0, v4.index);
  }
  return { head, ...(cidr4 === undefined ? {} : { cidr4 }), ...(cidr6 === undefined ? {} : { cidr6 }) };
}

interface MacroScan {
  endsWithMacro: boolean;
  hasMacro: boolean;
  /** The literal text after the last macro-expand. */
  trailingLiteral: string;
}

/**
 * RFC 7208 §7.1: macro-string = *( macro-expand / macro-literal );
 * macro-expand = ( "%{" macro-letter transformers *delimiter "}" ) / "%%" / "%_" / "%-".
 * Adds one error and returns undefined at the first fault.
 */
function scanMacroString(
  text: string,
  explanation: boolean,
  where: string,
  errors: Problem[],
): MacroScan | undefined {
  const fail = (message: string): undefined => {
    errors.push(problem('error', 'SPF_MACRO', message, where));
    return undefined;
  };
  let literalStart = 0;
  let hasMacro = false;
  let i = 0;
  while (i < text.length) {
    const ch = text[i]!;
    if (ch !== '%') {
      // macro-literal = %x21-24 / %x26-7E
      if (!/[\x21-\x7e]/.test(ch)) {
        errors.push(
          problem('error', 'SPF_CHARSET', `character "${shown(ch)}" is not allowed (RFC 7208 §7.1)`, where),
        );
        return undefined;
      }
      i++;
      continue;
    }
    const next = text[i + 1];
    hasMacro = true;
    if (next === '%' || next === '_' || next === '-') {
      i += 2;
      literalStart = i;
      continue;
    }
    if (next !== '{') {
      return fail(
        `"%" must be followed by "{", "%", "_" or "-", found "%${next === undefined ? '' : shown(next)}" (RFC 7208 §7.1)`,
      );
    }
    const close = text.indexOf('}', i);
    if (close < 0) return fail(`unterminated macro "${shown(text.slice(i))}" (RFC 7208 §7.1)`);
    const body = text.slice(i + 2, close);
    const m = /^([A-Za-z])(\d*)([rR]?)([-.+,/_=]*)$/.exec(body);
    if (!m)
      return fail(
        `malformed macro "%{${shown(body)}}": expected %{letter[digits][r][delimiters]} (RFC 7208 §7.1)`,
      );
    const letter = m[1]!.toLowerCase();
    // RFC 7208 §7.2: s l o d i p h v anywhere; c r t only in explanation text.
    if ('crt'.includes(letter) && !explanation) {
      return fail(
        `macro letter "${m[1]}" is only allowed in explanation text, not in the record (RFC 7208 §7.2)`,
      );
    }
    if (!'slodiphvcrt'.includes(letter)) {
      return fail(
        `unknown macro letter "${m[1]}" (RFC 7208 §7.2: s l o d i p h v, and c r t in explanations)`,
      );
    }
    // RFC 7208 §7.3: a DIGIT transformer must be nonzero.
    if (m[2] !== '' && /^0+$/.test(m[2]!))
      return fail(`macro "%{${body}}" keeps 0 labels: the digit must be non-zero (RFC 7208 §7.3)`);
    i = close + 1;
    literalStart = i;
  }
  return {
    endsWithMacro: hasMacro && literalStart === text.length,
    hasMacro,
    trailingLiteral: text.slice(literalStart),
  };
}

// RFC 7208 §7.1: toplabel = ( *alphanum ALPHA *alphanum ) / ( 1*alphanum "-" *( alphanum / "-" ) alphanum )
function isToplabel(label: string): boolean {
  if (/^[A-Za-z0-9]+$/.test(label)) return /[A-Za-z]/.test(label);
  return /^[A-Za-z0-9]+-[A-Za-z0-9-]*[A-Za-z0-9]$/.test(label);
}

// RFC 7208 §5.6: ip4-network = qnum "." qnum "." qnum "." qnum, qnum 0-255 without leading zeros.
function isIp4(text: string): boolean {
  const parts = text.split('.');
  return parts.length === 4 && parts.every((p) => /^(0|[1-9]\d{0,2})$/.test(p) && Number(p) <= 255);
}

// RFC 4291 §2.2: x:x:x:x:x:x:x:x, "::" once for a run of zero groups, optionally ending in dotted IPv4.
function isIp6(text: string): boolean {
  let groups = text;
  const lastColon = text.lastIndexOf(':');
  if (lastColon < 0) return false;
  const tail = text.slice(lastColon + 1);
  if (tail.includes('.')) {
    if (!isIp4(tail)) return false;
    groups = `${text.slice(0, lastColon + 1)}0:0`;
  }
  const halves = groups.split('::');
  const valid = (list: string[]) => list.every((g) => /^[0-9A-Fa-f]{1,4}$/.test(g));
  if (halves.length === 1) {
    const all = groups.split(':');
    return all.length === 8 && valid(all);
  }
  if (halves.length !== 2) return false;
  const left = halves[0] === '' ? [] : halves[0]!.split(':');
  const right = halves[1] === '' ? [] : halves[1]!.split(':');
  return left.length + right.length <= 7 && valid(left) && valid(right);
}

// RFC 7208 §6: redirect and exp each appear at most once.
function checkModifierCounts(terms: SpfTerm[], places: string[], errors: Problem[]): void {
  for (const name of ['redirect', 'exp']) {
    const at = terms.flatMap((t, i) => (t.kind === 'modifier' && t.name === name ? [i] : []));
    for (const i of at.slice(1)) {
      errors.push(
        problem(
          'error',
          'SPF_DUPLICATE_MODIFIER',
          `${name}= appears more than once (RFC 7208 §6)`,
          places[i],
        ),
      );
    }
  }
}

function policyWarnings(record: SpfRecord, places: string[]): Problem[] {
  const out: Problem[] = [];
  const terms = record.terms;
  const allIndex = terms.findIndex((t) => t.kind === 'mechanism' && t.name === 'all');
  const hasRedirect = terms.some((t) => t.kind === 'modifier' && t.name === 'redirect');
  terms.forEach((t, i) => {
    const where = places[i];
    if (t.kind === 'mechanism' && t.name === 'all' && i === allIndex) {
      if (t.qualifier === '+') {
        out.push(
          problem(
            'warning',
            'SPF_PASS_ALL',
            '"+all" lets every host on the internet pass as this domain',
            where,
          ),
        );
      } else if (t.qualifier === '?') {
        out.push(
          problem(
            'warning',
            'SPF_NEUTRAL_ALL',
            '"?all" gives no verdict for unlisted hosts (neutral)',
            where,
          ),
        );
      }
    }
    if (t.kind === 'mechanism' && t.name === 'ptr') {
      out.push(
        problem(
          'warning',
          'SPF_PTR',
          '"ptr" is slow and unreliable and SHOULD NOT be used (RFC 7208 §5.5)',
          where,
        ),
      );
    }
    const known = t.kind === 'mechanism' || t.name === 'redirect' || t.name === 'exp';
    if (!known) {
      out.push(
        problem(
          'note',
          'SPF_UNKNOWN_MODIFIER',
          `unknown modifier "${t.name}=" is ignored (RFC 7208 §6)`,
          where,
        ),
      );
    }
    if (allIndex >= 0 && i > allIndex && (t.kind === 'mechanism' || !known)) {
      out.push(
        problem(
          'warning',
          'SPF_TERMS_AFTER_ALL',
          'comes after "all" and is never used (RFC 7208 §5.1)',
          where,
        ),
      );
    }
  });
  if (allIndex >= 0 && hasRedirect) {
    const at = terms.findIndex((t) => t.kind === 'modifier' && t.name === 'redirect');
    out.push(
      problem(
        'warning',
        'SPF_REDIRECT_IGNORED',
        'redirect= is ignored because the record has "all" (RFC 7208 §6.1)',
        places[at],
      ),
    );
  }
  if (allIndex < 0 && !hasRedirect) {
    out.push(
      problem(
        'warning',
        'SPF_NO_ALL',
        'no "all" and no redirect=: unlisted hosts get the default result neutral (RFC 7208 §4.7); end with "-all" or "~all"',
      ),
    );
  }
  const lookups = dnsLookupTerms(record).length;
  if (lookups > SPF_MAX_DNS_LOOKUPS) {
    out.push(
      problem(
        'warning',
        'SPF_TOO_MANY_LOOKUPS',
        `${lookups} terms cause DNS lookups in this record alone; more than ${SPF_MAX_DNS_LOOKUPS} gives permerror (RFC 7208 §4.6.4)`,
      ),
    );
  }
  return out;
}

function toError(errors: Problem[], others: Problem[] = []): SpfError {
  const first = errors[0]!;
  const more = errors.length > 1 ? ` (and ${errors.length - 1} more)` : '';
  return new SpfError(first.code as SpfErrorCode, first.message + more, {
    where: first.where,
    problems: [...errors, ...others],
  });
}

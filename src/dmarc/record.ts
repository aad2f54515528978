// DMARC policy record parser and formatter: RFC 7489 §6.3 (tags) and §6.4 (ABNF).
// Where RFC 9989 (DMARCbis) differs, this module still judges by RFC 7489 and adds a 'note'
// Problem with a DMARC_BIS_* code: bis allows any tag order after v, treats a missing p as none,
// drops pct/rf/ri and the "!size" URI suffix, and adds np, psd and t.
// (RFC 9989 text was read through its drafts, draft-ietf-dmarc-dmarcbis, and the IANA registry.)

import { type Problem, problem } from '../common/errors.js';
import { shown } from '../common/text.js';
import { DmarcError, type DmarcErrorCode } from './error.js';

export type DmarcPolicy = 'none' | 'quarantine' | 'reject';
export type DmarcAlignment = 'r' | 's';
export type DmarcFailureOption = '0' | '1' | 'd' | 's';

export interface DmarcUri {
  uri: string;
  /** The "!size" suffix as written, lower-cased ("10m"); RFC 9989 drops it. */
  maxSize?: string;
}

export interface DmarcTag {
  /** Lower-cased. */
  name: string;
  value: string;
}

export interface DmarcRecord {
  version: 'DMARC1';
  /** p: absent only when the record has a usable rua (RFC 7489 §6.6.3: receivers act as none). */
  policy?: DmarcPolicy;
  /** sp */
  subdomainPolicy?: DmarcPolicy;
  /** np (RFC 9989; RFC 9091) */
  nonexistentSubdomainPolicy?: DmarcPolicy;
  /** rua */
  aggregateReportUris?: DmarcUri[];
  /** ruf */
  failureReportUris?: DmarcUri[];
  /** adkim */
  dkimAlignment?: DmarcAlignment;
  /** aspf */
  spfAlignment?: DmarcAlignment;
  /** fo */
  failureOptions?: DmarcFailureOption[];
  /** rf (lower-cased) */
  reportFormats?: string[];
  /** ri, seconds */
  reportInterval?: number;
  /** pct */
  percent?: number;
  /** psd (RFC 9989) */
  publicSuffixDomain?: 'y' | 'n' | 'u';
  /** t (RFC 9989) */
  testing?: 'y' | 'n';
  /** Tags this parser does not know, in record order; receivers ignore them. */
  unknownTags: DmarcTag[];
}

export interface DmarcParseResult {
  record: DmarcRecord;
  /** Severity 'warning' or 'note'; errors are thrown as DmarcError. */
  warnings: Problem[];
}

const POLICIES: readonly string[] = ['none', 'quarantine', 'reject'];
const STRENGTH: Record<DmarcPolicy, number> = { none: 0, quarantine: 1, reject: 2 };
const BIS_TAGS: readonly string[] = ['np', 'psd', 't'];
const BIS_REMOVED_TAGS: readonly string[] = ['pct', 'rf', 'ri'];
const MAX_REPORT_SIZE = 2n ** 64n - 1n;
const SIZE_UNITS: Record<string, bigint> = { '': 1n, k: 2n ** 10n, m: 2n ** 20n, g: 2n ** 30n, t: 2n ** 40n };
// RFC 7489 §6.4 (after RFC 6376 §3.2): tag-name = ALPHA *ALNUMPUNC
const TAG_NAME = /^[A-Za-z][A-Za-z0-9_]*$/;

/** Parse one DMARC TXT record (character-strings already joined). Throws DmarcError on any error. */
export function parseDmarc(text: string): DmarcParseResult {
  const parser = new DmarcParser();
  const record = parser.parse(text);
  const { errors, others } = parser;
  if (errors.length > 0 || !record) {
    const first = errors[0]!;
    const more = errors.length > 1 ? ` (and ${errors.length - 1} more)` : '';
    throw new DmarcError(first.code as DmarcErrorCode, first.message + more, {
      where: first.where,
      problems: [...errors, ...others],
    });
  }
  return { record, warnings: others };
}

/** The record text: v and p first (RFC 7489 §6.4 order), then the other tags, "; "-separated. */
export function formatDmarc(record: DmarcRecord): string {
  const tags: string[] = ['v=DMARC1'];
  const add = (name: string, value: string | number | undefined) => {
    if (value !== undefined) tags.push(`${name}=${value}`);
  };
  const uris = (list: DmarcUri[] | undefined) =>
    list?.map((u) => (u.maxSize === undefined ? u.uri : `${u.uri}!${u.maxSize}`)).join(',');
  add('p', record.policy);
  add('sp', record.subdomainPolicy);
  add('np', record.nonexistentSubdomainPolicy);
  add('adkim', record.dkimAlignment);
  add('aspf', record.spfAlignment);
  add('rua', uris(record.aggregateReportUris));
  add('ruf', uris(record.failureReportUris));
  add('fo', record.failureOptions?.join(':'));
  add('rf', record.reportFormats?.join(':'));
  add('ri', record.reportInterval);
  add('pct', record.percent);
  add('psd', record.publicSuffixDomain);
  add('t', record.testing);
  for (const tag of record.unknownTags) add(tag.name, tag.value);
  return tags.join('; ');
}

class DmarcParser {
  readonly errors: Problem[] = [];
  /** Warnings and notes. */
  readonly others: Problem[] = [];

  private fail(code: DmarcErrorCode, message: string, where?: string): undefined {
    this.errors.push(problem('error', code, message, where));
    return undefined;
  }

  private add(severity: 'warning' | 'note', code: string, message: string, where?: string): void {
    this.others.push(problem(severity, code, message, where));
  }

  parse(text: string): DmarcRecord | undefined {
    if (text.trim() === '')
      return this.fail('DMARC_EMPTY', 'empty record: a DMARC record begins with "v=DMARC1;"');
    const tags = this.splitTags(text);
    if (!tags) return undefined;
    // RFC 7489 §6.4: dmarc-version = "v" *WSP "=" *WSP %x44 %x4d %x41 %x52 %x43 %x31 (case-sensitive value)
    const version = tags[0];
    if (version?.name !== 'v') {
      return this.fail(
        'DMARC_VERSION',
        'not a DMARC record: it must begin with "v=DMARC1" (RFC 7489 §6.4)',
        'tag v',
      );
    }
    if (version.value !== 'DMARC1') {
      const hint = /^DMARC1[ \t]/.test(version.value) ? ' (missing ";" after it?)' : '';
      return this.fail(
        'DMARC_VERSION',
        `version must be exactly "DMARC1" (case-sensitive), got "${shown(version.value)}"${hint} (RFC 7489 §6.4)`,
        'tag v',
      );
    }
    if (!text.includes(';'))
      this.fail('DMARC_SYNTAX', '"v=DMARC1" must be followed by ";" (RFC 7489 §6.4)', 'tag v');
    const record: DmarcRecord = { version: 'DMARC1', unknownTags: [] };
    const seen = new Set<string>(['v']);
    tags.slice(1).forEach((tag, i) => {
      const where = `tag ${tag.name}`;
      if (seen.has(tag.name)) {
        this.fail('DMARC_DUPLICATE_TAG', `tag "${tag.name}" appears more than once`, where);
        return;
      }
      seen.add(tag.name);
      // RFC 7489 §6.4: dmarc-request must directly follow dmarc-version.
      if (tag.name === 'p' && i !== 0) {
        this.fail(
          'DMARC_TAG_ORDER',
          'p must come right after v=DMARC1 (RFC 7489 §6.4); RFC 9989 allows any order',
          where,
        );
        this.add('note', 'DMARC_BIS_TAG_ORDER', 'RFC 9989 accepts tags in any order after v', where);
      }
      this.tag(record, tag, where);
    });
    this.recordChecks(record);
    return this.errors.length > 0 ? undefined : record;
  }

  /** RFC 7489 §6.4 / RFC 6376 §3.2 tag-list: tags separated by ";" with optional WSP, one final ";" allowed. */
  private splitTags(text: string): DmarcTag[] | undefined {
    const parts = text.split(';');
    const tags: DmarcTag[] = [];
    parts.forEach((part, i) => {
      const where = `tag ${i + 1}`;
      const body = trimWsp(part);
      if (body === '') {
        if (i === 0 || i !== parts.length - 1)
          this.fail('DMARC_SYNTAX', 'empty tag (two ";" in a row?)', where);
        return;
      }
      const bad = /[^\x21-\x7e \t]/u.exec(body);
      if (bad) {
        this.fail(
          'DMARC_SYNTAX',
          `character "${shown(bad[0])}" is not allowed (printable ASCII, SP and TAB only)`,
          where,
        );
        return;
      }
      const eq = body.indexOf('=');
      if (eq < 0) {
        this.fail('DMARC_SYNTAX', `"${shown(body)}" is not a tag: expected name=value`, where);
        return;
      }
      const name = trimWsp(body.slice(0, eq));
      if (!TAG_NAME.test(name)) {
        this.fail(
          'DMARC_SYNTAX',
          `"${shown(name)}" is not a valid tag name (a letter, then letters, digits or "_")`,
          where,
        );
        return;
      }
      tags.push({ name: name.toLowerCase(), value: trimWsp(body.slice(eq + 1)) });
    });
    return this.errors.length > 0 ? undefined : tags;
  }

  private tag(record: DmarcRecord, tag: DmarcTag, where: string): void {
    const { name, value } = tag;
    if (BIS_TAGS.includes(name)) {
      this.add(
        'note',
        'DMARC_BIS_TAG',
        `${name} is defined by RFC 9989; RFC 7489 receivers ignore it`,
        where,
      );
    }
    if (BIS_REMOVED_TAGS.includes(name)) {
      this.add(
        'note',
        'DMARC_BIS_REMOVED_TAG',
        `RFC 9989 removed ${name}; receivers following it ignore it`,
        where,
      );
    }
    switch (name) {
      // RFC 7489 §6.3: p, sp = none / quarantine / reject; RFC 9989 adds np with the same values.
      case 'p':
        record.policy = this.policy(value, where);
        break;
      case 'sp':
        record.subdomainPolicy = this.policy(value, where);
        break;
      case 'np':
        record.nonexistentSubdomainPolicy = this.policy(value, where);
        break;
      case 'rua':
        record.aggregateReportUris = this.uriList(value, where);
        break;
      case 'ruf':
        record.failureReportUris = this.uriList(value, where);
        break;
      // RFC 7489 §6.3: adkim, aspf = r / s
      case 'adkim':
        record.dkimAlignment = this.oneOf(value, ['r', 's'], where) as DmarcAlignment | undefined;
        break;
      case 'aspf':
        record.spfAlignment = this.oneOf(value, ['r', 's'], where) as DmarcAlignment | undefined;
        break;
      // RFC 7489 §6.4: dmarc-fo = ( "0" / "1" / "d" / "s" ) *( *WSP ":" *WSP ( "0" / "1" / "d" / "s" ) )
      case 'fo':
        record.failureOptions = this.list(value, ['0', '1', 'd', 's'], where) as
          | DmarcFailureOption[]
          | undefined;
        break;
      case 'rf':
        record.reportFormats = this.reportFormats(value, where);
        break;
      // RFC 7489 §6.3: ri is a 32-bit unsigned integer
      case 'ri':
        record.reportInterval = this.integer(value, 4294967295, Number.POSITIVE_INFINITY, where);
        break;
      // RFC 7489 §6.3/§6.4: pct = 1*3DIGIT, 0 to 100
      case 'pct':
        record.percent = this.integer(value, 100, 3, where);
        break;
      // RFC 9989: psd = y / n / u; t = y / n
      case 'psd':
        record.publicSuffixDomain = this.oneOf(value, ['y', 'n', 'u'], where) as 'y' | 'n' | 'u' | undefined;
        break;
      case 't':
        record.testing = this.oneOf(value, ['y', 'n'], where) as 'y' | 'n' | undefined;
        break;
      default:
        record.unknownTags.push(tag);
        this.add('note', 'DMARC_UNKNOWN_TAG', `unknown tag "${name}" is ignored (RFC 7489 §6.3)`, where);
    }
  }

  private policy(value: string, where: string): DmarcPolicy | undefined {
    return this.oneOf(value, POLICIES, where) as DmarcPolicy | undefined;
  }

  /** Keyword values are case-insensitive (ABNF literal strings). */
  private oneOf(value: string, allowed: readonly string[], where: string): string | undefined {
    const lower = value.toLowerCase();
    if (allowed.includes(lower)) return lower;
    return this.fail('DMARC_TAG_VALUE', `"${shown(value)}" is not one of ${allowed.join(', ')}`, where);
  }

  private list(value: string, allowed: readonly string[], where: string): string[] | undefined {
    const items = splitList(value, ':').map((item) => this.oneOf(item, allowed, where));
    return items.every((x) => x !== undefined) ? (items as string[]) : undefined;
  }

  // RFC 7489 §6.4: dmarc-rfmt = "rf" *WSP "=" *WSP Keyword *(*WSP ":" Keyword); Keyword is an RFC 5321 Ldh-str.
  private reportFormats(value: string, where: string): string[] | undefined {
    const formats = splitList(value, ':');
    const bad = formats.find((f) => !/^[A-Za-z0-9-]*[A-Za-z0-9]$/.test(f));
    if (bad !== undefined) {
      return this.fail(
        'DMARC_TAG_VALUE',
        `"${shown(bad)}" is not a report format keyword (letters, digits, "-")`,
        where,
      );
    }
    const lower = formats.map((f) => f.toLowerCase());
    for (const f of lower.filter((x) => x !== 'afrf')) {
      this.add(
        'note',
        'DMARC_RF_UNKNOWN',
        `report format "${f}" is not defined; only afrf is (RFC 7489 §6.3)`,
        where,
      );
    }
    return lower;
  }

  private integer(value: string, max: number, maxDigits: number, where: string): number | undefined {
    if (!/^\d+$/.test(value))
      return this.fail('DMARC_TAG_VALUE', `"${shown(value)}" is not a whole number`, where);
    if (Number(value) > max)
      return this.fail('DMARC_TAG_VALUE', `${shown(value)} is over the maximum ${max}`, where);
    if (value.length > maxDigits)
      return this.fail('DMARC_TAG_VALUE', `"${value}" has more than ${maxDigits} digits`, where);
    return Number(value);
  }

  // RFC 7489 §6.4: dmarc-uri = URI [ "!" 1*DIGIT [ "k" / "m" / "g" / "t" ] ], comma-separated.
  private uriList(value: string, where: string): DmarcUri[] | undefined {
    const items = splitList(value, ',');
    const uris = items.map((item, i) => this.uri(item, items.length > 1 ? `${where}, URI ${i + 1}` : where));
    return uris.every((u) => u !== undefined) ? (uris as DmarcUri[]) : undefined;
  }

  private uri(item: string, where: string): DmarcUri | undefined {
    if (item === '') return this.fail('DMARC_URI', 'empty URI', where);
    const bang = item.indexOf('!');
    const uri = bang < 0 ? item : item.slice(0, bang);
    const size = bang < 0 ? undefined : item.slice(bang + 1);
    // RFC 3986 §3: scheme ":" hier-part, only URI characters, "%" starts a two-hex-digit escape.
    if (!/^[A-Za-z][A-Za-z0-9+.-]*:./.test(uri)) {
      return this.fail(
        'DMARC_URI',
        `"${shown(uri)}" is not a URI: it needs a scheme such as "mailto:"`,
        where,
      );
    }
    if (!/^[A-Za-z0-9\-._~:/?#[\]@$&'()*+;=%]*$/.test(uri) || /%(?![0-9A-Fa-f]{2})/.test(uri)) {
      return this.fail('DMARC_URI', `"${shown(uri)}" has characters not allowed in a URI (RFC 3986)`, where);
    }
    const scheme = uri.slice(0, uri.indexOf(':')).toLowerCase();
    if (scheme === 'mailto' && !/^[^:]+:[^@?]+@[^@?]+(\?.*)?$/.test(uri)) {
      return this.fail('DMARC_URI', `"${shown(uri)}" has no mailbox (mailto:name@domain)`, where);
    }
    if (scheme !== 'mailto') {
      this.add(
        'warning',
        'DMARC_URI_SCHEME',
        `receivers only have to support mailto: URIs (RFC 7489 §6.3)`,
        where,
      );
    }
    if (size === undefined) return { uri };
    const m = /^(\d+)([kmgt]?)$/i.exec(size);
    if (!m)
      return this.fail(
        'DMARC_URI',
        `size limit "!${shown(size)}" must be digits with an optional k, m, g or t`,
        where,
      );
    if (BigInt(m[1]!) * SIZE_UNITS[m[2]!.toLowerCase()]! > MAX_REPORT_SIZE) {
      return this.fail('DMARC_URI', `size limit "!${shown(size)}" is too large`, where);
    }
    this.add(
      'note',
      'DMARC_BIS_URI_SIZE',
      'RFC 9989 removed the "!size" limit; receivers following it ignore it',
      where,
    );
    return { uri, maxSize: size.toLowerCase() };
  }

  private recordChecks(record: DmarcRecord): void {
    const hasRua = (record.aggregateReportUris?.length ?? 0) > 0;
    if (record.policy === undefined && !this.errors.some((e) => e.where === 'tag p')) {
      // RFC 7489 §6.6.3: without a valid p, a record with a usable rua is treated as p=none.
      if (hasRua) {
        this.add(
          'warning',
          'DMARC_NO_POLICY',
          'no p tag: receivers act as if p=none (RFC 7489 §6.6.3)',
          'tag p',
        );
      } else {
        this.fail('DMARC_MISSING_POLICY', 'the p tag is required (RFC 7489 §6.3)', 'tag p');
      }
      this.add('note', 'DMARC_BIS_NO_POLICY', 'RFC 9989 treats a record without p as p=none', 'tag p');
    }
    if (record.policy === 'none') {
      this.add(
        'warning',
        'DMARC_POLICY_NONE',
        'p=none only monitors: failing mail is not quarantined or rejected',
        'tag p',
      );
    }
    if (record.percent !== undefined && record.percent < 100) {
      this.add(
        'warning',
        'DMARC_PARTIAL_PCT',
        `pct=${record.percent}: the policy applies to only part of failing mail`,
        'tag pct',
      );
    }
    if (!record.aggregateReportUris) {
      this.add('warning', 'DMARC_NO_RUA', 'no rua: nobody receives aggregate reports', 'tag rua');
    }
    const { policy, subdomainPolicy } = record;
    if (policy && subdomainPolicy && STRENGTH[subdomainPolicy] < STRENGTH[policy]) {
      this.add(
        'warning',
        'DMARC_WEAK_SUBDOMAIN_POLICY',
        `sp=${subdomainPolicy} is weaker than p=${policy}`,
        'tag sp',
      );
    }
  }
}

/** Splits a list at `separator`, dropping SP and TAB around each item (RFC 7489 §6.4 allows *WSP there). */
function splitList(value: string, separator: string): string[] {
  return value.split(separator).map(trimWsp);
}

/** Removes SP and TAB at both ends. A loop, because an anchored regex is quadratic on long runs of spaces. */
function trimWsp(text: string): string {
  let start = 0;
  let end = text.length;
  while (start < end && (text[start] === ' ' || text[start] === '\t')) start++;
  while (end > start && (text[end - 1] === ' ' || text[end - 1] === '\t')) end--;
  return text.slice(start, end);
}

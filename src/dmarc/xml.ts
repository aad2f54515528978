// One DMARC aggregate report from its XML text: RFC 7489 Appendix C (the schema) and RFC 9990 (the
// DMARCbis aggregate format, namespace urn:ietf:params:xml:ns:dmarc-2.0), read into report.ts's types.
//
// Hostile input is refused before the XML parser builds anything: a DOCTYPE or entity declaration
// (billion laughs, XXE) and any text, attribute or CDATA run longer than MAX_XML_TEXT (a 10 MB value)
// by one pass over the text. saxes (the well-kept streaming XML parser jsdom uses; well-formedness
// checked, no DTD processing) then reads the XML into a small tree of the elements, with the nesting
// depth, the number of elements and the number of <record>s (DMARC_REPORT_CAPS.records) capped while it
// reads; with the DTD refused it only replaces the five predefined entities
// and character references, and refuses any other entity. It reads a small report about 4 times as fast
// as fast-xml-parser with its validator.
//
// Real reporters' quirks are read with a warning, as parsedmarc reads them: text outside <feedback>
// (an unclosed <xs:schema> wrapper), unknown elements (ignored), stray text between elements, an empty
// <reason>, an empty org_name, RFC 9990's disposition "pass". Enumerated values are compared exactly
// (RFC 7489 Appendix C spells them in lower case): "Pass" or "None" is refused, as parsedmarc refuses
// its aggregate_invalid sample — a reporter that writes them cannot be trusted to mean the same thing.
import { SaxesParser } from 'saxes';
import { type Problem, problem } from '../common/errors.js';
import { shown } from '../common/text.js';
import { DmarcError, type DmarcErrorCode } from './error.js';
import type { DmarcAlignment, DmarcPolicy } from './record.js';
import type {
  DmarcDisposition,
  DmarcDkimResult,
  DmarcPolicyPublished,
  DmarcReason,
  DmarcRecordRow,
  DmarcReport,
  DmarcSpfResult,
  DmarcVerdict,
} from './report.js';

/** The caps on report content: over a "refused" cap the report is refused, over a "clipped" one cut. */
export const DMARC_REPORT_CAPS = {
  /** org_name, report_id: refused over (as TLS-RPT's organization-name, report-id). */
  identity: 256,
  /** domain names (policy, header_from, envelope_*, auth_results domains; RFC 1035 §2.3.4): refused over. */
  hostName: 253,
  /** source_ip: refused over. */
  address: 45,
  /** Enumerated values and result / reason types, DKIM selectors: refused over. */
  typeName: 64,
  /** email, reason comments, fo: clipped over. */
  freeText: 1024,
  /** <record> elements per report: refused over (a real report of a big sender has a few thousand). */
  records: 10_000,
  /** auth_results dkim / spf entries and reasons per record: refused over. */
  listEntries: 100,
  /** Warnings listed; the rest are counted in one more. */
  problems: 100,
} as const;

/** The longest run of text, attribute value or CDATA the XML may hold: refused before parsing. */
export const MAX_XML_TEXT = 65_536;
/** Elements in one report: refused while parsing (10,000 records of 50 elements each). */
export const MAX_XML_ELEMENTS = 500_000;
/** The deepest nesting of elements: refused while parsing (the schema needs 5). */
export const MAX_XML_DEPTH = 32;

// RFC 7489 Appendix C: DispositionType, DMARCResultType; §6.3 p, adkim/aspf.
const DISPOSITIONS: readonly string[] = ['none', 'quarantine', 'reject'];
const VERDICTS: readonly string[] = ['pass', 'fail'];
const POLICIES: readonly string[] = ['none', 'quarantine', 'reject'];
const ALIGNMENTS: readonly string[] = ['r', 's'];

/** The element paths below the root that matter while the tree is built; `repeated` ones become arrays. */
interface PathStep {
  repeated?: boolean;
  children?: Record<string, PathStep>;
}

// Elements that may repeat: given as arrays even when there is one (feedback/record,
// feedback/record/auth_results/dkim and spf, feedback/record/row/policy_evaluated/reason). A tree of
// steps rather than a set of path strings: no string is built per element.
/** feedback/record: counted while the tree is built (DMARC_REPORT_CAPS.records). */
const RECORD_STEP: PathStep = {
  repeated: true,
  children: {
    auth_results: { children: { dkim: { repeated: true }, spf: { repeated: true } } },
    row: { children: { policy_evaluated: { children: { reason: { repeated: true } } } } },
  },
};
const PATHS: PathStep = { children: { feedback: { children: { record: RECORD_STEP } } } };

/**
 * An element with child elements: its children by name (a Map: any name is just a key, and V8 keeps
 * prototype-less objects in its slow dictionary mode).
 */
type Node = Map<string, unknown>;
/** The node of an absent or empty element (never written to). */
const EMPTY: Node = new Map();

/** Reading one report: its warnings, deduplicated and capped. */
class Reader {
  readonly warnings: Problem[] = [];
  private readonly seen = new Set<string>();
  private dropped = 0;

  warn(code: string, message: string, where?: string): void {
    const key = `${code}\0${message}`;
    if (this.seen.has(key)) return;
    this.seen.add(key);
    if (this.warnings.length < DMARC_REPORT_CAPS.problems)
      this.warnings.push(problem('warning', code, message, where));
    else this.dropped++;
  }

  finish(): Problem[] {
    if (this.dropped > 0) {
      this.warnings.push(
        problem('note', 'DMARC_REPORT_MORE_WARNINGS', `${this.dropped} more warnings not listed`),
      );
    }
    return this.warnings;
  }
}

function fail(code: DmarcErrorCode, message: string, where?: string): never {
  throw new DmarcError(code, message, where === undefined ? {} : { where });
}

/** Read the report in `text` (the decoded XML). Throws DmarcError; quirks come back as warnings. */
export function reportFromXml(text: string): { report: DmarcReport; warnings: Problem[] } {
  const reader = new Reader();
  prescanXml(text);
  const doc = parseTree(feedbackElement(text, reader));
  const feedback = doc.get('feedback');
  if (!isNode(feedback)) fail('DMARC_REPORT_NOT_A_REPORT', 'the XML has no <feedback> root element');
  return { report: readFeedback(feedback, reader), warnings: reader.finish() };
}

/**
 * One pass over the XML text before parsing: refuse a DTD or entity declaration, and any run of text,
 * tag (attribute values) or CDATA longer than MAX_XML_TEXT.
 */
export function prescanXml(text: string): void {
  // Only at a "<!" (found with indexOf, far quicker than a case-blind regex over the whole text).
  const declaration = /(DOCTYPE|ENTITY|ELEMENT|ATTLIST)/iy;
  for (let at = text.indexOf('<!'); at >= 0; at = text.indexOf('<!', at + 2)) {
    declaration.lastIndex = at + 2;
    const name = declaration.exec(text)?.[1];
    if (name === undefined) continue;
    fail(
      'DMARC_REPORT_DTD',
      `the XML holds a <!${name.toUpperCase()}> declaration; DTDs and entities are refused (no XXE, no entity expansion)`,
      `offset ${at}`,
    );
  }
  const long = longRunAt(text, MAX_XML_TEXT);
  if (long >= 0) tooLong(long);
}

/**
 * Where the first run of text, tag (attribute values) or CDATA longer than `max` characters begins, or -1.
 * A run ends at every "<" and ">"; a CDATA section is one run from its "<![CDATA[" to its "]]>". Found by
 * jumping from delimiter to delimiter with indexOf (a text shorter than `max` is not read at all).
 */
export function longRunAt(text: string, max: number): number {
  if (text.length <= max) return -1;
  let lt = text.indexOf('<');
  let gt = text.indexOf('>');
  let pos = 0;
  for (;;) {
    if (lt !== -1 && lt < pos) lt = text.indexOf('<', pos);
    if (gt !== -1 && gt < pos) gt = text.indexOf('>', pos);
    const next = lt === -1 ? (gt === -1 ? text.length : gt) : gt === -1 ? lt : Math.min(lt, gt);
    if (next - pos > max) return pos;
    if (next === text.length) return -1;
    if (next === lt && text.startsWith('<![CDATA[', next)) {
      const end = text.indexOf(']]>', next);
      if ((end < 0 ? text.length : end) - next > max) return next;
      if (end < 0) return -1;
      pos = end + 3;
    } else {
      pos = next + 1;
    }
  }
}

function tooLong(offset: number): never {
  fail(
    'DMARC_REPORT_FIELD_TOO_LONG',
    `a text, attribute or CDATA run longer than ${MAX_XML_TEXT} characters, more than any report value may be`,
    `offset ${offset}`,
  );
}

/**
 * The <feedback> element and what it holds. Anything else around it other than the XML declaration,
 * comments and whitespace (ikea.com's unclosed <xs:schema> wrapper) is left out with a warning.
 */
function feedbackElement(text: string, reader: Reader): string {
  const start = /<(?:[A-Za-z_][\w.-]*:)?feedback[\s>]/.exec(text);
  if (!start) fail('DMARC_REPORT_NOT_A_REPORT', 'no <feedback> element: not a DMARC aggregate report');
  const end = lastClosingFeedback(text);
  if (end < start.index) fail('DMARC_REPORT_BAD_XML', 'the <feedback> element is never closed');
  const outside = (text.slice(0, start.index) + text.slice(end))
    .replace(/<\?xml[^>]*\?>/g, '')
    .replace(/<!--[\s\S]*?-->/g, '')
    .trim();
  if (outside.length > 0) {
    reader.warn('DMARC_REPORT_OUTSIDE_FEEDBACK', `text outside <feedback> ignored: "${shown(outside, 60)}"`);
  }
  // Blanked rather than cut, so that the parser's line and column numbers are those of the input.
  const blank = (part: string) => part.replace(/[^\n]/g, ' ');
  return blank(text.slice(0, start.index)) + text.slice(start.index, end) + blank(text.slice(end));
}

/**
 * Where the last </feedback> (any prefix, blanks before ">") ends, or -1: found from the end, at the "</"
 * before each "feedback" (a tag name holds no "<"), rather than with a regex over the whole text.
 */
export function lastClosingFeedback(text: string): number {
  const closing = /<\/(?:[A-Za-z_][\w.-]*:)?feedback\s*>/y;
  for (
    let at = text.lastIndexOf('feedback');
    at >= 0;
    at = at > 0 ? text.lastIndexOf('feedback', at - 1) : -1
  ) {
    const start = text.lastIndexOf('</', at);
    if (start < 0) return -1;
    closing.lastIndex = start;
    if (closing.exec(text)) return closing.lastIndex;
  }
  return -1;
}

/**
 * The element tree of `xml`, as nodes keyed by element name (namespace prefixes dropped, attributes
 * ignored): an element without child elements is its trimmed text, one with children a node (with its
 * own text, if any, under "#text"); a name that repeats gives an array, as do the REPEATED paths always.
 */
function parseTree(xml: string): Node {
  const root: Node = new Map();
  const stack: Array<{ node: Node; name: string; step?: PathStep; text: string; children: number }> = [
    { node: root, name: '', step: PATHS, text: '', children: 0 },
  ];
  let elements = 0;
  let records = 0;
  const parser = new SaxesParser({ position: true });
  let error: Error | undefined;
  parser.on('error', (err) => {
    error ??= err;
  });
  parser.on('opentag', (tag) => {
    if (++elements > MAX_XML_ELEMENTS) throw tooMany('elements', MAX_XML_ELEMENTS, parser.line);
    if (stack.length > MAX_XML_DEPTH) throw tooMany('levels of nesting', MAX_XML_DEPTH, parser.line);
    const name = tag.name.slice(tag.name.indexOf(':') + 1);
    const parent = stack[stack.length - 1]!;
    parent.children++;
    const children = parent.step?.children;
    const step = children && Object.hasOwn(children, name) ? children[name] : undefined;
    if (step === RECORD_STEP && ++records > DMARC_REPORT_CAPS.records) {
      throw new DmarcError(
        'DMARC_REPORT_TOO_MANY_RECORDS',
        `more than ${DMARC_REPORT_CAPS.records} <record> elements in one report`,
        { where: `line ${parser.line}` },
      );
    }
    stack.push({ node: new Map(), name, step, text: '', children: 0 });
  });
  parser.on('text', (chunk) => {
    stack[stack.length - 1]!.text += chunk;
  });
  parser.on('cdata', (chunk) => {
    stack[stack.length - 1]!.text += chunk;
  });
  parser.on('closetag', () => {
    const element = stack.pop()!;
    const parent = stack[stack.length - 1]!;
    const text = element.text.trim();
    let value: unknown = element.node;
    if (element.children === 0) value = text;
    else if (text !== '') element.node.set('#text', text);
    const key = element.name;
    const existing = parent.node.get(key);
    if (existing === undefined) parent.node.set(key, element.step?.repeated ? [value] : value);
    else if (Array.isArray(existing)) existing.push(value);
    else parent.node.set(key, [existing, value]);
  });
  try {
    parser.write(xml).close();
  } catch (err) {
    if (err instanceof DmarcError) throw err;
    error ??= err as Error;
  }
  if (error) {
    // saxes writes the place first: "5:18: disallowed character in tag name."
    const at = /^(\d+):(\d+): (.*)$/s.exec(error.message);
    if (!at) fail('DMARC_REPORT_BAD_XML', `not well-formed XML: ${error.message}`);
    fail('DMARC_REPORT_BAD_XML', `not well-formed XML: ${at[3]}`, `line ${at[1]}, column ${at[2]}`);
  }
  return root;
}

function tooMany(what: string, cap: number, line: number): DmarcError {
  return new DmarcError('DMARC_REPORT_TOO_LARGE', `more than ${cap} ${what} in the XML`, {
    where: `line ${line}`,
  });
}

function isNode(value: unknown): value is Node {
  return value instanceof Map;
}

// ---- the elements of RFC 7489 Appendix C ----

const KNOWN: Record<string, readonly string[]> = {
  feedback: ['version', 'report_metadata', 'policy_published', 'record', 'extension'],
  report_metadata: [
    'org_name',
    'email',
    'extra_contact_info',
    'report_id',
    'date_range',
    'error',
    'generator',
  ],
  date_range: ['begin', 'end'],
  policy_published: ['domain', 'adkim', 'aspf', 'p', 'sp', 'pct', 'fo', 'np', 'testing', 'discovery_method'],
  record: ['row', 'identifiers', 'identities', 'auth_results'],
  row: ['source_ip', 'count', 'policy_evaluated'],
  policy_evaluated: ['disposition', 'dkim', 'spf', 'reason'],
  reason: ['type', 'comment'],
  identifiers: ['header_from', 'envelope_from', 'envelope_to'],
  identities: ['header_from', 'envelope_from', 'envelope_to'],
  auth_results: ['dkim', 'spf'],
  dkim: ['domain', 'selector', 'result', 'human_result'],
  spf: ['domain', 'scope', 'result', 'human_result'],
};

/** The element `name` of `parent` as a node (an element with children); EMPTY when it is absent or empty. */
function child(parent: Node, name: string, where: string, reader: Reader): Node {
  const value = parent.get(name);
  if (value === undefined || value === '') return EMPTY;
  if (!isNode(value)) {
    reader.warn('DMARC_REPORT_UNEXPECTED_TEXT', `<${name}> holds text where elements belong; ignored`, where);
    return EMPTY;
  }
  checkKnown(value, name, `${where}/${name}`, reader);
  return value;
}

/** KNOWN as sets, looked up for every element of every record. */
const KNOWN_SETS = new Map(Object.entries(KNOWN).map(([name, children]) => [name, new Set(children)]));

/** Unknown elements and stray text inside `node` are ignored, with a warning naming them. */
function checkKnown(node: Node, name: string, where: string, reader: Reader): void {
  const known = KNOWN_SETS.get(name);
  for (const [key, value] of node) {
    if (key === '#text') {
      reader.warn(
        'DMARC_REPORT_STRAY_TEXT',
        `stray text inside <${name}> ignored: "${shown(String(value), 40)}"`,
        where,
      );
    } else if (!known?.has(key)) {
      reader.warn(
        'DMARC_REPORT_UNKNOWN_ELEMENT',
        `unknown element <${shown(key, 64)}> inside <${name}> ignored`,
        where,
      );
    }
  }
}

/** The text of the element `name` of `parent`, trimmed; undefined when absent or empty. */
function text(parent: Node, name: string, where: string, reader: Reader): string | undefined {
  let value = parent.get(name);
  if (Array.isArray(value)) {
    reader.warn(
      'DMARC_REPORT_REPEATED_ELEMENT',
      `<${name}> appears more than once; the first is used`,
      where,
    );
    value = value[0];
  }
  if (isNode(value)) {
    // Mixed content: an element holding text and elements (a comment-like child, unknown markup).
    reader.warn(
      'DMARC_REPORT_UNEXPECTED_ELEMENT',
      `<${name}> holds elements where text belongs; its text is used`,
      where,
    );
    value = value.get('#text');
  }
  if (value === undefined || value === null) return undefined;
  const s = String(value).trim();
  return s === '' ? undefined : s;
}

function required(parent: Node, name: string, where: string, reader: Reader): string {
  const value = text(parent, name, where, reader);
  if (value === undefined) fail('DMARC_REPORT_MISSING_FIELD', `<${name}> is missing or empty`, where);
  return value;
}

function capped(value: string, max: number, name: string, where: string): string {
  if (value.length > max) {
    fail('DMARC_REPORT_FIELD_TOO_LONG', `<${name}> is ${value.length} characters, more than ${max}`, where);
  }
  return value;
}

function clipped(value: string | undefined, name: string, where: string, reader: Reader): string | undefined {
  if (value === undefined || value.length <= DMARC_REPORT_CAPS.freeText) return value;
  reader.warn('DMARC_REPORT_CLIPPED', `<${name}> cut to ${DMARC_REPORT_CAPS.freeText} characters`, where);
  return value.slice(0, DMARC_REPORT_CAPS.freeText);
}

function oneOf<T extends string>(value: string, allowed: readonly string[], name: string, where: string): T {
  if (!allowed.includes(value)) {
    fail(
      'DMARC_REPORT_BAD_VALUE',
      `<${name}> is "${shown(value, 40)}", not one of ${allowed.join(', ')} (RFC 7489 Appendix C)`,
      where,
    );
  }
  return value as T;
}

function list(value: unknown, name: string, where: string): Node[] {
  const items = Array.isArray(value) ? value : value === undefined || value === '' ? [] : [value];
  if (items.length > DMARC_REPORT_CAPS.listEntries) {
    fail('DMARC_REPORT_BAD_VALUE', `more than ${DMARC_REPORT_CAPS.listEntries} <${name}> entries`, where);
  }
  return items.map((item) => (isNode(item) ? item : EMPTY));
}

/** Unix seconds (RFC 7489 Appendix C: xs:integer; some reporters add a fraction) as an ISO timestamp. */
function timestamp(parent: Node, name: string, where: string, reader: Reader): string {
  const value = required(parent, name, where, reader);
  const seconds = /^\d{1,12}(\.\d*)?$/.test(value) ? Math.floor(Number(value)) : Number.NaN;
  if (!(seconds <= 253402300799)) {
    fail('DMARC_REPORT_BAD_VALUE', `<${name}> is "${shown(value, 40)}", not Unix seconds`, where);
  }
  // Whole seconds, written as TLS-RPT's are: 2024-05-01T00:00:00Z.
  return new Date(seconds * 1000).toISOString().replace('.000Z', 'Z');
}

function readFeedback(feedback: Node, reader: Reader): DmarcReport {
  checkKnown(feedback, 'feedback', 'feedback', reader);
  const metaWhere = 'report_metadata';
  const meta = child(feedback, 'report_metadata', 'feedback', reader);
  const organization = capped(
    text(meta, 'org_name', metaWhere, reader) ?? '',
    DMARC_REPORT_CAPS.identity,
    'org_name',
    metaWhere,
  );
  if (organization === '')
    reader.warn('DMARC_REPORT_EMPTY_FIELD', '<org_name> is missing or empty', metaWhere);
  const reportId = capped(
    required(meta, 'report_id', metaWhere, reader),
    DMARC_REPORT_CAPS.identity,
    'report_id',
    metaWhere,
  );
  const email = clipped(text(meta, 'email', metaWhere, reader), 'email', metaWhere, reader);
  const rangeWhere = `${metaWhere}/date_range`;
  const range = child(meta, 'date_range', metaWhere, reader);
  const begin = timestamp(range, 'begin', rangeWhere, reader);
  const end = timestamp(range, 'end', rangeWhere, reader);
  if (end < begin)
    reader.warn(
      'DMARC_REPORT_BAD_RANGE',
      `the date range ends (${end}) before it begins (${begin})`,
      rangeWhere,
    );

  const policyPublished = readPolicy(child(feedback, 'policy_published', 'feedback', reader), reader);
  const records = feedback.get('record');
  // A repeated path (PATHS): <record> is always an array when present.
  const recordNodes: unknown[] = Array.isArray(records) ? records : [];
  if (recordNodes.length === 0)
    reader.warn('DMARC_REPORT_NO_RECORDS', 'the report has no <record>', 'feedback');
  const rows = recordNodes.map((node, i) =>
    readRecord(isNode(node) ? node : EMPTY, `record ${i + 1}`, reader),
  );
  return {
    kind: 'dmarc',
    organization,
    reportId,
    ...(email === undefined ? {} : { email }),
    begin,
    end,
    domain: policyPublished.domain,
    policyPublished,
    records: rows,
  };
}

function readPolicy(node: Node, reader: Reader): DmarcPolicyPublished {
  const where = 'policy_published';
  // RFC 4343: domain names compare without case; kept lower-cased so that reports group by domain.
  const domain = capped(
    required(node, 'domain', where, reader),
    DMARC_REPORT_CAPS.hostName,
    'domain',
    where,
  ).toLowerCase();
  const policy: DmarcPolicyPublished = {
    domain,
    p: oneOf<DmarcPolicy>(required(node, 'p', where, reader), POLICIES, 'p', where),
  };
  for (const name of ['sp', 'np'] as const) {
    const value = optionalEnum<DmarcPolicy>(node, name, POLICIES, where, reader);
    if (value !== undefined) policy[name] = value;
  }
  for (const name of ['adkim', 'aspf'] as const) {
    const value = optionalEnum<DmarcAlignment>(node, name, ALIGNMENTS, where, reader);
    if (value !== undefined) policy[name] = value;
  }
  const pct = text(node, 'pct', where, reader);
  if (pct !== undefined) {
    // RFC 7489 §6.3: pct is an integer 0..100.
    if (/^\d{1,3}$/.test(pct) && Number(pct) <= 100) policy.pct = Number(pct);
    else reader.warn('DMARC_REPORT_BAD_PCT', `<pct> is "${shown(pct, 40)}", not 0..100; left out`, where);
  }
  const fo = clipped(text(node, 'fo', where, reader), 'fo', where, reader);
  if (fo !== undefined) policy.fo = fo;
  return policy;
}

/** An optional policy value that is not one of `allowed` is left out with a warning. */
function optionalEnum<T extends string>(
  node: Node,
  name: string,
  allowed: readonly string[],
  where: string,
  reader: Reader,
): T | undefined {
  const value = text(node, name, where, reader);
  if (value === undefined) return undefined;
  if (allowed.includes(value)) return value as T;
  reader.warn(
    'DMARC_REPORT_BAD_POLICY_VALUE',
    `<${name}> is "${shown(value, 40)}", not one of ${allowed.join(', ')}; left out`,
    where,
  );
  return undefined;
}

function readRecord(node: Node, where: string, reader: Reader): DmarcRecordRow {
  checkKnown(node, 'record', where, reader);
  const row = child(node, 'row', where, reader);
  const rowWhere = `${where}/row`;
  const sourceIp = capped(
    required(row, 'source_ip', rowWhere, reader),
    DMARC_REPORT_CAPS.address,
    'source_ip',
    rowWhere,
  );
  const countText = required(row, 'count', rowWhere, reader);
  if (!/^\d{1,15}$/.test(countText)) {
    fail('DMARC_REPORT_BAD_VALUE', `<count> is "${shown(countText, 40)}", not a whole number`, rowWhere);
  }
  const evalWhere = `${rowWhere}/policy_evaluated`;
  const evaluated = child(row, 'policy_evaluated', rowWhere, reader);
  let dispositionText = required(evaluated, 'disposition', evalWhere, reader);
  if (dispositionText === 'pass') {
    // RFC 9990 adds "pass" (the message passed DMARC, so no policy was applied): that is "none" here.
    reader.warn(
      'DMARC_REPORT_DISPOSITION_PASS',
      'disposition "pass" (RFC 9990) is read as "none"',
      evalWhere,
    );
    dispositionText = 'none';
  }
  const disposition = oneOf<DmarcDisposition>(dispositionText, DISPOSITIONS, 'disposition', evalWhere);
  const dkim = oneOf<DmarcVerdict>(
    required(evaluated, 'dkim', evalWhere, reader),
    VERDICTS,
    'dkim',
    evalWhere,
  );
  const spf = oneOf<DmarcVerdict>(required(evaluated, 'spf', evalWhere, reader), VERDICTS, 'spf', evalWhere);
  const reasons: DmarcReason[] = [];
  for (const reason of list(evaluated.get('reason'), 'reason', evalWhere)) {
    checkKnown(reason, 'reason', evalWhere, reader);
    const type = text(reason, 'type', evalWhere, reader);
    const comment = clipped(text(reason, 'comment', evalWhere, reader), 'comment', evalWhere, reader);
    if (type === undefined) {
      reader.warn('DMARC_REPORT_EMPTY_REASON', '<reason> without a <type> ignored', evalWhere);
      continue;
    }
    reasons.push({
      type: capped(type, DMARC_REPORT_CAPS.typeName, 'type', evalWhere),
      ...(comment === undefined ? {} : { comment }),
    });
  }

  const idWhere = `${where}/identifiers`;
  // Some early reporters wrote <identities> (parsedmarc reads it as <identifiers> too).
  const oldName = node.get('identifiers') === undefined && node.get('identities') !== undefined;
  if (oldName) reader.warn('DMARC_REPORT_OLD_DRAFT', '<identities> read as <identifiers>', where);
  const identifiers = child(node, oldName ? 'identities' : 'identifiers', where, reader);
  const host = (name: string) => {
    const value = text(identifiers, name, idWhere, reader);
    return value === undefined ? undefined : capped(value, DMARC_REPORT_CAPS.hostName, name, idWhere);
  };
  const headerFrom = host('header_from')?.toLowerCase();
  if (headerFrom === undefined)
    reader.warn('DMARC_REPORT_EMPTY_FIELD', '<header_from> is missing or empty', idWhere);
  const envelopeFrom = host('envelope_from');
  const envelopeTo = host('envelope_to');

  const authWhere = `${where}/auth_results`;
  const auth = child(node, 'auth_results', where, reader);
  const dkimResults: DmarcDkimResult[] = list(auth.get('dkim'), 'dkim', authWhere).map((entry) => {
    const { domain, result, extra } = authResult(entry, 'dkim', 'selector', authWhere, reader);
    return extra === undefined ? { domain, result } : { domain, result, selector: extra };
  });
  const spfResults: DmarcSpfResult[] = list(auth.get('spf'), 'spf', authWhere).map((entry) => {
    const { domain, result, extra } = authResult(entry, 'spf', 'scope', authWhere, reader);
    return extra === undefined ? { domain, result } : { domain, result, scope: extra };
  });
  return {
    sourceIp,
    count: Number(countText),
    disposition,
    dkim,
    spf,
    headerFrom: headerFrom ?? '',
    ...(envelopeFrom === undefined ? {} : { envelopeFrom }),
    ...(envelopeTo === undefined ? {} : { envelopeTo }),
    dkimResults,
    spfResults,
    reasons,
  };
}

/** One `<auth_results>` entry: its domain, result (none when absent) and the selector or scope. */
function authResult(
  entry: Node,
  name: 'dkim' | 'spf',
  extraName: 'selector' | 'scope',
  where: string,
  reader: Reader,
): { domain: string; result: string; extra?: string } {
  checkKnown(entry, name, where, reader);
  const domain = text(entry, 'domain', where, reader) ?? '';
  const result = text(entry, 'result', where, reader) ?? 'none';
  const extra = text(entry, extraName, where, reader);
  return {
    domain: capped(domain, DMARC_REPORT_CAPS.hostName, 'domain', where),
    result: capped(result, DMARC_REPORT_CAPS.typeName, 'result', where),
    extra: extra === undefined ? undefined : capped(extra, DMARC_REPORT_CAPS.typeName, extraName, where),
  };
}

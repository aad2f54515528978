// TLS-RPT policy TXT record at _smtp._tls.<domain>: RFC 8460 §3.
//
//   tlsrpt-record    = tlsrpt-version 1*(field-delim tlsrpt-field) [field-delim]
//   field-delim      = *WSP ";" *WSP
//   tlsrpt-rua       = %s"rua=" tlsrpt-uri *(*WSP "," *WSP tlsrpt-uri)
//   tlsrpt-extension = tlsrpt-ext-name "=" tlsrpt-ext-value
//
// Fields are split at ";" (a ";" inside a report URI must be percent-encoded, as "," and "!" must).
import { type Problem, problem } from '../common/errors.js';
import { endsWithWsp, selectVersionedRecord, trimWsp, type VersionedSelection } from '../common/txt.js';
import { TlsRptError, type TlsRptErrorCode } from './error.js';

export const TLSRPT_VERSION = 'v=TLSRPTv1';

export interface TlsRptRecord {
  /** Report URIs in record order (mailto: or https:), as written. */
  rua: string[];
  /** Extension fields (name, value) in record order. */
  extensions: Array<[string, string]>;
}

// RFC 8460 §3: tlsrpt-ext-name = (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".")
const EXT_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$/;
// RFC 8460 §3: tlsrpt-ext-value = 1*(%x21-3A / %x3C / %x3E-7E), i.e. no "=", ";", space or control
const EXT_VALUE = /^[\x21-\x3a\x3c\x3e-\x7e]+$/;

/** Pick the one TLS-RPT record among the TXT strings at _smtp._tls.<domain> (RFC 8460 §3). */
export function selectTlsRptRecord(txts: readonly string[]): VersionedSelection {
  return selectVersionedRecord(txts, TLSRPT_VERSION);
}

/** Parse a TLS-RPT TXT record. Throws TlsRptError listing every error; returns warnings/notes otherwise. */
export function parseTlsRptRecord(text: string): { record: TlsRptRecord; warnings: Problem[] } {
  const errors: Problem[] = [];
  const warnings: Problem[] = [];
  const fail = (code: TlsRptErrorCode, message: string, where?: string) =>
    errors.push(problem('error', code, message, where));

  // RFC 8460 §3: the record begins with the case-sensitive version field "v=TLSRPTv1".
  if (!text.startsWith(TLSRPT_VERSION)) {
    throw new TlsRptError(
      'TLSRPT_RECORD_VERSION',
      `record must start with "${TLSRPT_VERSION}", got "${text.slice(0, 16)}${text.length > 16 ? '...' : ''}"`,
      { where: 'field v' },
    );
  }
  const [afterVersion = '', ...fields] = text.slice(TLSRPT_VERSION.length).split(';');
  if (!/^[ \t]*$/.test(afterVersion)) {
    throw new TlsRptError(
      'TLSRPT_RECORD_VERSION',
      `version must be exactly "${TLSRPT_VERSION}" followed by ";", got "${TLSRPT_VERSION}${afterVersion}"`,
      { where: 'field v' },
    );
  }
  if (afterVersion !== '') {
    // Valid per the RFC 8460 ABNF (field-delim), but §3 also says to discard records not beginning
    // with "v=TLSRPTv1;", so some senders may skip this one (compare RFC 8461 erratum 6285).
    warnings.push(
      problem(
        'note',
        'TLSRPT_RECORD_WSP_BEFORE_SEMICOLON',
        `whitespace between "${TLSRPT_VERSION}" and ";": some senders only accept "${TLSRPT_VERSION};"`,
        'field v',
      ),
    );
  }

  const record: TlsRptRecord = { rua: [], extensions: [] };
  let ruaSeen = false;
  fields.forEach((raw, i) => {
    const where = `field ${i + 2}`;
    const isLast = i === fields.length - 1;
    const field = trimWsp(raw);
    if (field === '') {
      // RFC 8460 §3: one optional field-delim may end the record; an empty field elsewhere is ";;".
      if (!isLast) fail('TLSRPT_RECORD_SYNTAX', 'empty field (two ";" in a row)', where);
      return;
    }
    if (isLast && endsWithWsp(raw)) {
      warnings.push(
        problem(
          'note',
          'TLSRPT_RECORD_TRAILING_WSP',
          'whitespace after the last field (RFC 8460 §3 allows it only after ";")',
          where,
        ),
      );
    }
    const eq = field.indexOf('=');
    if (eq < 0) {
      fail('TLSRPT_RECORD_SYNTAX', `field "${field}" has no "=" (expected name=value)`, where);
      return;
    }
    const name = field.slice(0, eq);
    const value = field.slice(eq + 1);
    if (name === 'rua') {
      // RFC 8460 §3: exactly one rua field (the one field the record must have).
      if (ruaSeen) {
        fail(
          'TLSRPT_RECORD_DUPLICATE_RUA',
          'rua given more than once; list every URI in one rua, separated by ","',
          where,
        );
        return;
      }
      ruaSeen = true;
      record.rua = parseRua(value, where, fail);
      return;
    }
    if (!EXT_NAME.test(name)) {
      fail(
        'TLSRPT_RECORD_BAD_EXTENSION',
        `invalid field name "${name}": 1-32 letters, digits, "_", "-" or ".", starting with a letter or digit`,
        where,
      );
      return;
    }
    if (!EXT_VALUE.test(value)) {
      fail(
        'TLSRPT_RECORD_BAD_EXTENSION',
        value === ''
          ? `field ${name} has an empty value`
          : `field ${name} has an invalid value "${value}": no spaces, control characters, "=" or ";"`,
        where,
      );
      return;
    }
    record.extensions.push([name, value]);
  });

  if (!ruaSeen && errors.length === 0) {
    fail(
      'TLSRPT_RECORD_NO_RUA',
      'no rua field: the record must say where reports go (rua=mailto:... or https://...)',
    );
  }
  if (errors.length > 0) throw TlsRptError.fromProblems(errors);
  return { record, warnings };
}

/** Zone-file value of a record: `v=TLSRPTv1; rua=mailto:a@b.example,https://x.example/tlsrpt`. */
export function formatTlsRptRecord(record: TlsRptRecord): string {
  const fields = [TLSRPT_VERSION, `rua=${record.rua.join(',')}`];
  for (const [name, value] of record.extensions) fields.push(`${name}=${value}`);
  return fields.join('; ');
}

/** Check one report URI (RFC 8460 §3); returns what is wrong, or undefined when it is fine. */
export function checkReportUri(uri: string): string | undefined {
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(uri);
  if (!scheme) return `"${uri}" has no scheme: use mailto:ADDRESS or https://HOST/PATH`;
  // RFC 3986 §2: only unreserved, reserved and percent-encoded characters.
  if (!/^[A-Za-z0-9\-._~:/?#[\]@!$&'()*+,;=%]*$/.test(uri)) {
    return `"${uri}" contains characters that must be percent-encoded in a URI`;
  }
  if (/%(?![0-9A-Fa-f]{2})/.test(uri)) return `"${uri}" has a malformed percent-escape`;
  // RFC 8460 §3: "," and "!" inside a report URI MUST be percent-encoded.
  if (uri.includes('!'))
    return `"${uri}" contains "!", which must be written %21 (no DMARC-style size limits here)`;
  switch (scheme[1]!.toLowerCase()) {
    case 'mailto':
      return checkMailto(uri, uri.slice(scheme[0].length));
    case 'https':
      return checkHttps(uri);
    case 'http':
      return `"${uri}": reports are only posted over https: (RFC 8460 §3), not http:`;
    default:
      return `"${uri}": unsupported scheme "${scheme[1]}:" (RFC 8460 §3 defines mailto: and https:)`;
  }
}

function parseRua(
  value: string,
  where: string,
  fail: (code: TlsRptErrorCode, message: string, where?: string) => void,
): string[] {
  const uris = value.split(',').map((u) => trimWsp(u));
  if (uris.every((u) => u === '')) {
    fail('TLSRPT_RECORD_BAD_URI', 'rua has no URI', `${where} (rua)`);
    return [];
  }
  uris.forEach((uri, i) => {
    const uriWhere = `${where} (rua URI ${i + 1})`;
    if (uri === '') {
      fail('TLSRPT_RECORD_BAD_URI', 'empty URI in the rua list', uriWhere);
      return;
    }
    const wrong = checkReportUri(uri);
    if (wrong) fail('TLSRPT_RECORD_BAD_URI', wrong, uriWhere);
  });
  return uris;
}

// RFC 5322 §3.4.1 addr-spec: dot-atom or quoted-string "@" dot-atom or domain-literal.
const ATEXT = "[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]";
const LOCAL_PART = new RegExp(`^(?:${ATEXT}+(?:\\.${ATEXT}+)*|"(?:[^"\\\\\\r\\n]|\\\\.)*")$`);
const DOMAIN_LABEL = '[A-Za-z0-9\\u0080-\\uffff](?:[A-Za-z0-9\\u0080-\\uffff-]*[A-Za-z0-9\\u0080-\\uffff])?';
const DOMAIN = new RegExp(`^(?:${DOMAIN_LABEL}(?:\\.${DOMAIN_LABEL})*|\\[[\\x21-\\x5a\\x5e-\\x7e]*\\])$`);

// RFC 6068: mailto:addr-spec[?hfields]; the address may be percent-encoded.
function checkMailto(uri: string, rest: string): string | undefined {
  const to = rest.split('?', 1)[0]!;
  let decoded: string;
  try {
    decoded = decodeURIComponent(to);
  } catch {
    return `"${uri}": the address is not valid percent-encoded UTF-8`;
  }
  if (decoded === '') return `"${uri}" has no email address after mailto:`;
  for (const address of decoded.split(',')) {
    const at = address.lastIndexOf('@');
    if (at <= 0 || !LOCAL_PART.test(address.slice(0, at)) || !DOMAIN.test(address.slice(at + 1))) {
      return `"${uri}": "${address}" is not an email address`;
    }
  }
  return undefined;
}

function checkHttps(uri: string): string | undefined {
  if (!/^https:\/\/[^/?#]/i.test(uri)) return `"${uri}" has no host (expected https://HOST/PATH)`;
  try {
    const url = new URL(uri);
    if (url.hostname === '') return `"${uri}" has no host`;
  } catch {
    return `"${uri}" is not a valid https: URL`;
  }
  return undefined;
}

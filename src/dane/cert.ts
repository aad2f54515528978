// DANE / TLSA (RFC 6698, RFC 7671): reading certificates and computing TLSA certificate association data.
// Node's crypto.X509Certificate does the X.509 work; this file adds strict input handling around it.
import { createHash, X509Certificate } from 'node:crypto';
import { problem } from '../common/errors.js';
import { DaneError } from './error.js';

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END ([A-Z0-9 ]+)-----/g;
const PEM_BEGIN = /-----BEGIN [A-Z0-9 ]+-----/g;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * Certificates from a file's bytes: PEM holding one or many CERTIFICATE blocks (other blocks such as a private
 * key are skipped), or exactly one DER certificate. Order is kept (a server chain file lists the leaf first).
 * Throws DaneError naming the block that is wrong.
 */
export function loadCertificates(bytes: Buffer): X509Certificate[] {
  const text = bytes.toString('latin1');
  if (text.includes('-----BEGIN ')) return loadPem(text);
  if (bytes.length === 0) throw new DaneError('DANE_CERT_MISSING', 'empty input: no certificate');
  if (bytes[0] !== 0x30) {
    throw new DaneError(
      'DANE_CERT_INVALID',
      'not a certificate: no PEM "-----BEGIN CERTIFICATE-----" line and not DER',
    );
  }
  return [parseDer(bytes, 'DER certificate')];
}

function loadPem(text: string): X509Certificate[] {
  const certs: X509Certificate[] = [];
  const otherLabels: string[] = [];
  const problems = [];
  let blocks = 0;
  for (const match of text.matchAll(PEM_BLOCK)) {
    blocks++;
    const [, label = '', body = '', endLabel = ''] = match;
    const where = `PEM block ${blocks} (line ${lineOf(text, match.index)})`;
    if (label !== endLabel) {
      problems.push(problem('error', 'DANE_CERT_INVALID', `BEGIN ${label} ends with END ${endLabel}`, where));
      continue;
    }
    if (label !== 'CERTIFICATE') {
      otherLabels.push(label);
      continue;
    }
    try {
      certs.push(parseDer(decodeBase64(body, where), where));
    } catch (err) {
      if (!(err instanceof DaneError)) throw err;
      problems.push(...err.problems);
    }
  }
  const begins = text.match(PEM_BEGIN)?.length ?? 0;
  if (begins > blocks) {
    problems.push(
      problem('error', 'DANE_CERT_INVALID', 'a "-----BEGIN" line has no matching "-----END" line'),
    );
  }
  const first = problems[0];
  if (first) {
    throw new DaneError('DANE_CERT_INVALID', first.message, { where: first.where, problems });
  }
  if (certs.length === 0) {
    const found = otherLabels.length > 0 ? ` (found only: ${[...new Set(otherLabels)].join(', ')})` : '';
    throw new DaneError('DANE_CERT_MISSING', `no CERTIFICATE block${found}`);
  }
  return certs;
}

function decodeBase64(body: string, where: string): Buffer {
  const compact = body.replace(/\s+/g, '');
  if (compact.length === 0 || compact.length % 4 !== 0 || !BASE64.test(compact)) {
    throw new DaneError('DANE_CERT_INVALID', 'the block is not valid base64', { where });
  }
  return Buffer.from(compact, 'base64');
}

function parseDer(der: Buffer, where: string): X509Certificate {
  const length = derElementLength(der);
  if (length === undefined || length > der.length) {
    throw new DaneError('DANE_CERT_INVALID', 'not a DER certificate (bad or truncated ASN.1 SEQUENCE)', {
      where,
    });
  }
  if (length < der.length) {
    throw new DaneError('DANE_CERT_INVALID', `${der.length - length} extra bytes after the certificate`, {
      where,
    });
  }
  try {
    return new X509Certificate(der);
  } catch (err) {
    throw new DaneError('DANE_CERT_INVALID', `not a valid X.509 certificate (${(err as Error).message})`, {
      where,
      cause: err,
    });
  }
}

/** Total length of the leading DER SEQUENCE (header + content), or undefined when the header is malformed. */
function derElementLength(der: Buffer): number | undefined {
  if (der.length < 2 || der[0] !== 0x30) return undefined;
  const first = der[1] ?? 0;
  if (first < 0x80) return 2 + first;
  const count = first & 0x7f;
  if (count === 0 || count > 4 || der.length < 2 + count) return undefined;
  let length = 0;
  for (let i = 0; i < count; i++) length = length * 256 + (der[2 + i] ?? 0);
  return 2 + count + length;
}

function lineOf(text: string, index: number): number {
  let line = 1;
  for (let i = 0; i < index; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}

// Exported once per certificate object: a bulk check judges the same probed chain for every domain on that MX.
const spkiOf = new WeakMap<X509Certificate, Buffer>();

/** The DER SubjectPublicKeyInfo of a certificate (what TLSA selector 1 covers, RFC 6698 §2.1.2). */
export function spkiDer(cert: X509Certificate): Buffer {
  let der = spkiOf.get(cert);
  if (der === undefined) {
    der = cert.publicKey.export({ type: 'spki', format: 'der' });
    spkiOf.set(cert, der);
  }
  return der;
}

/**
 * TLSA certificate association data for a certificate (RFC 6698 §2.1.2-2.1.3): selector 0 = the full DER
 * certificate, 1 = the DER SubjectPublicKeyInfo; matching type 0 = the bytes themselves, 1 = SHA-256, 2 = SHA-512.
 * Returns undefined for other selectors or matching types (RFC 7671 §4: such records never match).
 */
export function associationData(
  cert: X509Certificate,
  selector: number,
  matchingType: number,
): Buffer | undefined {
  let selected: Buffer;
  if (selector === 0) selected = cert.raw;
  else if (selector === 1) selected = spkiDer(cert);
  else return undefined;
  if (matchingType === 0) return selected;
  if (matchingType === 1) return createHash('sha256').update(selected).digest();
  if (matchingType === 2) return createHash('sha512').update(selected).digest();
  return undefined;
}

/** A short human name for a certificate: its subject on one line, or "<empty subject>". */
export function describeCertificate(cert: X509Certificate): string {
  const subject = cert.subject?.trim();
  return subject ? subject.split('\n').join(', ') : '<empty subject>';
}

/** notBefore / notAfter as Dates. */
export function validityOf(cert: X509Certificate): { notBefore: Date; notAfter: Date } {
  return { notBefore: new Date(cert.validFrom), notAfter: new Date(cert.validTo) };
}

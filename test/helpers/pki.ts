// Test PKIs built with the `openssl` command line in a temporary directory: roots, intermediates and leaves
// with chosen subjects, SANs, key types (EC P-256 or RSA 2048) and validity dates (past, future, inverted).
// Certificates are signed with `openssl ca` because it takes explicit -startdate/-enddate (OpenSSL 3.0's
// `x509 -req` only knows -days). Keys are random; everything else (serials, dates, names) is deterministic.
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export type KeyType = 'ec' | 'rsa';

export interface TestKey {
  type: KeyType;
  /** PEM private key file. */
  path: string;
}

export interface TestCert {
  name: string;
  /** OpenSSL one-line subject, e.g. "/CN=Root CA". */
  subject: string;
  key: TestKey;
  /** PEM certificate file (just this certificate). */
  certPath: string;
  pem: string;
  der: Buffer;
  x509: X509Certificate;
}

export interface CertOptions {
  /** OpenSSL one-line subject, e.g. "/O=Example/CN=mx.example.com" (default "/CN=<name>"). */
  subject?: string;
  /** The signing certificate; omitted = self-signed. */
  issuer?: TestCert;
  /** basicConstraints CA:TRUE with keyCertSign (default: true for self-signed, false otherwise). */
  ca?: boolean;
  /** An existing key (same key, new certificate) or the type of a fresh key (default 'ec'). */
  key?: TestKey | KeyType;
  /** subjectAltName dNSNames; none = no SAN extension at all. */
  sans?: string[];
  /** Default DEFAULT_NOT_BEFORE. */
  notBefore?: Date;
  /** Default DEFAULT_NOT_AFTER. May be before notBefore (a "never valid" certificate). */
  notAfter?: Date;
}

/** Fixed default validity, so certificates do not depend on the day the tests run. */
export const DEFAULT_NOT_BEFORE = new Date('2020-01-01T00:00:00Z');
export const DEFAULT_NOT_AFTER = new Date('2090-01-01T00:00:00Z');

/** Run openssl; throws with its stderr when it fails. */
export function openssl(args: string[], input?: Buffer | string, cwd?: string): Buffer {
  try {
    return execFileSync('openssl', args, { input, cwd, stdio: ['pipe', 'pipe', 'pipe'] });
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString() ?? '';
    throw new Error(`openssl ${args.join(' ')} failed: ${stderr || (err as Error).message}`);
  }
}

/** Hex digest computed by `openssl dgst`, independent of node:crypto. */
export function opensslDigest(data: Buffer, algorithm: 'sha256' | 'sha512'): string {
  const out = openssl(['dgst', `-${algorithm}`, '-r'], data).toString();
  return out.split(/\s/)[0] ?? '';
}

/** The certificate as DER, via `openssl x509 -outform DER`. */
export function opensslCertDer(certPath: string): Buffer {
  return openssl(['x509', '-in', certPath, '-outform', 'DER']);
}

/** The certificate's SubjectPublicKeyInfo as DER, via `openssl x509 -pubkey | openssl pkey -pubin -outform DER`. */
export function opensslSpkiDer(certPath: string): Buffer {
  const pubkey = openssl(['x509', '-in', certPath, '-pubkey', '-noout']);
  return openssl(['pkey', '-pubin', '-outform', 'DER'], pubkey);
}

const CA_CONFIG = `[ ca ]
default_ca = testca
[ testca ]
database = index.txt
new_certs_dir = newcerts
serial = serial
default_md = sha256
policy = policy_any
unique_subject = no
email_in_dn = no
copy_extensions = none
[ policy_any ]
countryName = optional
organizationName = optional
organizationalUnitName = optional
commonName = optional
`;

/** A directory of keys and certificates; call remove() when done. */
export class TestPki {
  readonly dir: string;
  private count = 0;

  private constructor(dir: string) {
    this.dir = dir;
    mkdirSync(join(dir, 'newcerts'));
    writeFileSync(join(dir, 'index.txt'), '');
    writeFileSync(join(dir, 'serial'), '1000\n');
    writeFileSync(join(dir, 'ca.cnf'), CA_CONFIG);
  }

  static create(prefix = 'mxguard-pki-'): TestPki {
    return new TestPki(mkdtempSync(join(tmpdir(), prefix)));
  }

  newKey(type: KeyType = 'ec'): TestKey {
    const path = join(this.dir, `key-${++this.count}-${type}.pem`);
    const algorithm =
      type === 'ec'
        ? ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256']
        : ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048'];
    openssl(['genpkey', ...algorithm, '-out', path]);
    return { type, path };
  }

  /** Issue (or self-sign) a certificate; `name` names its files. */
  issue(name: string, options: CertOptions = {}): TestCert {
    const subject = options.subject ?? `/CN=${name}`;
    const key = typeof options.key === 'object' ? options.key : this.newKey(options.key ?? 'ec');
    const ca = options.ca ?? options.issuer === undefined;
    const csr = join(this.dir, `${name}.csr`);
    const certPath = join(this.dir, `${name}.pem`);
    const extPath = join(this.dir, `${name}.ext`);
    writeFileSync(extPath, extensions(ca, options.sans ?? [], options.issuer === undefined));
    openssl(['req', '-new', '-key', key.path, '-subj', subject, '-out', csr]);
    const signer = options.issuer
      ? ['-cert', options.issuer.certPath, '-keyfile', options.issuer.key.path]
      : ['-selfsign', '-keyfile', key.path];
    openssl(
      [
        'ca',
        '-batch',
        '-config',
        'ca.cnf',
        ...signer,
        '-in',
        csr,
        '-out',
        certPath,
        '-startdate',
        asn1Time(options.notBefore ?? DEFAULT_NOT_BEFORE),
        '-enddate',
        asn1Time(options.notAfter ?? DEFAULT_NOT_AFTER),
        '-notext',
        '-preserveDN',
        '-extfile',
        extPath,
        '-extensions',
        'ext',
      ],
      undefined,
      this.dir,
    );
    const pem = readFileSync(certPath, 'utf8');
    const x509 = new X509Certificate(pem);
    return { name, subject, key, certPath, pem, der: x509.raw, x509 };
  }

  /** Write a file into the PKI directory and return its path. */
  writeFile(name: string, content: string | Buffer): string {
    const path = join(this.dir, name);
    writeFileSync(path, content);
    return path;
  }

  /** A PEM file holding the given certificates in order (e.g. leaf, intermediate). */
  writeChain(name: string, certs: TestCert[]): string {
    return this.writeFile(name, certs.map((c) => c.pem).join(''));
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function extensions(ca: boolean, sans: string[], selfSigned: boolean): string {
  const lines = ['[ ext ]', 'subjectKeyIdentifier = hash'];
  lines.push(selfSigned ? 'authorityKeyIdentifier = keyid' : 'authorityKeyIdentifier = keyid:always');
  if (ca) {
    lines.push('basicConstraints = critical,CA:true', 'keyUsage = critical,keyCertSign,cRLSign');
  } else {
    lines.push(
      'basicConstraints = CA:false',
      'keyUsage = critical,digitalSignature,keyEncipherment',
      'extendedKeyUsage = serverAuth',
    );
  }
  if (sans.length > 0) lines.push(`subjectAltName = ${sans.map((s) => `DNS:${s}`).join(',')}`);
  return `${lines.join('\n')}\n`;
}

/** YYYYMMDDHHMMSSZ, which `openssl ca -startdate/-enddate` accepts for any year. */
function asn1Time(date: Date): string {
  return `${date.toISOString().replace(/[-:T]/g, '').slice(0, 14)}Z`;
}

export interface StandardChain {
  root: TestCert;
  intermediate: TestCert;
  leaf: TestCert;
}

/**
 * Root CA -> intermediate CA -> leaf for `host` (SAN dNSName = host, CN = host), all of one key type.
 * Leaf and CA dates can be chosen to build expired or not-yet-valid chains.
 */
export function standardChain(
  pki: TestPki,
  options: {
    prefix?: string;
    host?: string;
    sans?: string[];
    keyType?: KeyType;
    leafNotBefore?: Date;
    leafNotAfter?: Date;
    caNotBefore?: Date;
    caNotAfter?: Date;
  } = {},
): StandardChain {
  const prefix = options.prefix ?? '';
  const host = options.host ?? 'mx.example.com';
  const keyType = options.keyType ?? 'ec';
  const caDates = { notBefore: options.caNotBefore, notAfter: options.caNotAfter };
  const root = pki.issue(`${prefix}root`, {
    subject: `/O=mxguard test/CN=${prefix}Root CA`,
    key: keyType,
    ...caDates,
  });
  const intermediate = pki.issue(`${prefix}intermediate`, {
    subject: `/O=mxguard test/CN=${prefix}Issuing CA`,
    issuer: root,
    ca: true,
    key: keyType,
    ...caDates,
  });
  const leaf = pki.issue(`${prefix}leaf`, {
    subject: `/CN=${host}`,
    issuer: intermediate,
    key: keyType,
    sans: options.sans ?? [host],
    notBefore: options.leafNotBefore,
    notAfter: options.leafNotAfter,
  });
  return { root, intermediate, leaf };
}

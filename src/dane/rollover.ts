// TLSA key rollover for SMTP DANE (RFC 7671 §8.1 and §8.4, RFC 7672 §3.1.1): the RRset to publish before a key
// change (the current key's 3 1 1 beside the next key's), the steps and how long to wait between them, and, after
// a certificate renewal, whether the key now deployed has been in DNS long enough for every cache to know it.
// Pure: keys, certificates, the published RRset, the TTL and the clock are handed in.
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type X509Certificate,
} from 'node:crypto';
import { spkiDer } from './cert.js';
import { DaneError } from './error.js';
import { formatTlsa, type TlsaRecord, tlsaOwner } from './tlsa.js';

/** DANE-EE(3) SPKI(1) SHA2-256(1): the record a rollover stages for each key (RFC 7671 §5.1). */
export function keyRecord(spki: Buffer): TlsaRecord {
  return { usage: 3, selector: 1, matchingType: 1, data: createHash('sha256').update(spki).digest() };
}

/** The DER SubjectPublicKeyInfo of a PEM private key (or public key); `source` names the input in errors. */
export function keySpki(pem: Buffer | string, source: string): Buffer {
  try {
    return createPublicKey(createPrivateKey(pem)).export({ type: 'spki', format: 'der' });
  } catch (privateError) {
    try {
      return createPublicKey(pem).export({ type: 'spki', format: 'der' });
    } catch {
      const reason = (privateError as Error).message;
      throw new DaneError('DANE_KEY_INVALID', `${source}: not a PEM private or public key (${reason})`, {
        cause: privateError,
      });
    }
  }
}

/** Throws DANE_KEY_INVALID when `spki` is not the public key of `cert`. */
export function checkKeyMatches(
  spki: Buffer,
  keySource: string,
  cert: X509Certificate,
  certSource: string,
): void {
  if (!spkiDer(cert).equals(spki)) {
    throw new DaneError(
      'DANE_KEY_INVALID',
      `${keySource} is not the key of the certificate in ${certSource}`,
    );
  }
}

export type KeyType = 'ec' | 'rsa';

/** A fresh key for the next certificate: EC P-256 or RSA 2048, PKCS#8 PEM. */
export function generateKey(type: KeyType): { pem: string; spki: Buffer } {
  const { privateKey, publicKey } =
    type === 'ec'
      ? generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
      : generateKeyPairSync('rsa', { modulusLength: 2048 });
  return {
    pem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    spki: publicKey.export({ type: 'spki', format: 'der' }),
  };
}

/** Caches may hold the old RRset this many TTLs after the change (a forwarder refreshing just before expiry). */
export const TTL_FACTOR = 2;

/** The TLSA RRset as DNS has it now. */
export interface PublishedRRset {
  records: TlsaRecord[];
  /** The RRset's TTL; absent when there is no RRset. */
  ttl?: number;
  /** No RRset: how long resolvers may cache its absence (RFC 2308 §5). */
  negativeTtl?: number;
}

export interface RolloverInput {
  host: string;
  port?: number;
  current: X509Certificate;
  /** The DER SPKI of the next key. */
  nextSpki: Buffer;
  /** The RRset read from DNS; undefined when DNS could not be read. */
  published?: PublishedRRset;
  /** A TTL given by the user: the plan waits for the larger of it and what DNS says. */
  ttl?: number;
}

export type RolloverStepName = 'publish' | 'wait' | 'deploy' | 'drop-old';

export interface RolloverStep {
  step: RolloverStepName;
  /** Known to be done already (the publish step, when DNS holds the RRset). */
  done: boolean;
  text: string;
  /** The RRset this step publishes, as "3 1 1 <hex>". */
  records?: string[];
}

export interface RolloverPlan {
  owner: string;
  current: TlsaRecord;
  next: TlsaRecord;
  /** Current + next, plus the DANE-TA records already published (they pin no server key). */
  publishNow: TlsaRecord[];
  /** Published records that publishNow leaves out (keys that are neither current nor next). */
  dropped: TlsaRecord[];
  /** The RRset once the new key is deployed: next plus the kept DANE-TA records. */
  afterDeploy: TlsaRecord[];
  ttl: number;
  ttlSource: 'dns' | 'option';
  /** TTL_FACTOR x ttl seconds between publishing and deploying. */
  waitSeconds: number;
  /** DNS already holds every record of publishNow. */
  published: boolean;
  steps: RolloverStep[];
}

/** The plan of RFC 7671 §8.1: publish current + next, wait, deploy the next key, drop the current record. */
export function planRollover(input: RolloverInput): RolloverPlan {
  const owner = tlsaOwner(input.host, input.port ?? 25);
  const current = keyRecord(spkiDer(input.current));
  const next = keyRecord(input.nextSpki);
  if (sameRecord(current, next)) {
    throw new DaneError(
      'DANE_ROLLOVER',
      'the next key is the key of the current certificate: a rollover needs a new key (RFC 7671 §8.1)',
    );
  }
  const publishedRecords = input.published?.records ?? [];
  const kept = publishedRecords.filter((r) => r.usage === 2);
  const publishNow = [current, next, ...kept];
  const dropped = publishedRecords.filter((r) => !publishNow.some((p) => sameRecord(p, r)));
  const afterDeploy = [next, ...kept];
  const { ttl, ttlSource } = pickTtl(input.published, input.ttl);
  const waitSeconds = TTL_FACTOR * ttl;
  const published = publishNow.every((p) => publishedRecords.some((r) => sameRecord(p, r)));
  const list = (records: TlsaRecord[]) => records.map((r) => formatTlsa(r));
  const steps: RolloverStep[] = [
    {
      step: 'publish',
      done: published,
      text: published
        ? `DNS already holds the current and the next key's records at ${owner}`
        : `publish the RRset at ${owner}: the current key's record and the next key's (TTL ${ttl})`,
      records: list(publishNow),
    },
    {
      step: 'wait',
      done: false,
      text: `wait at least ${TTL_FACTOR} x TTL = ${duration(waitSeconds)} after publishing, so no cache still holds an RRset without the next key`,
    },
    {
      step: 'deploy',
      done: false,
      text: 'deploy the certificate for the next key on the server, and reload it',
    },
    {
      step: 'drop-old',
      done: false,
      text: `replace the RRset at ${owner} with the next key's record (and stage the key after it: mxguard tlsa rollover --generate-next-key)`,
      records: list(afterDeploy),
    },
  ];
  return {
    owner,
    current,
    next,
    publishNow,
    dropped,
    afterDeploy,
    ttl,
    ttlSource,
    waitSeconds,
    published,
    steps,
  };
}

function pickTtl(
  published: PublishedRRset | undefined,
  given: number | undefined,
): { ttl: number; ttlSource: 'dns' | 'option' } {
  const fromDns = published?.records.length ? published.ttl : published?.negativeTtl;
  if (fromDns === undefined && given === undefined) {
    throw new DaneError(
      'DANE_ROLLOVER',
      'the TTL of the TLSA RRset is unknown (DNS not read): give it with --ttl',
    );
  }
  if (fromDns !== undefined && (given === undefined || fromDns >= given))
    return { ttl: fromDns, ttlSource: 'dns' };
  return { ttl: given as number, ttlSource: 'option' };
}

// ---------------------------------------------------------------------------------------------------------
// After a renewal: may the key now deployed stay?

export interface DeployCheckInput {
  owner: string;
  /** The 3 1 1 of the key now deployed. */
  deployed: TlsaRecord;
  /** The 3 1 1 of the key deployed before, when known: dropped once the new key is safe. */
  previous?: TlsaRecord;
  /** The 3 1 1 of the key to stage for the following rollover. */
  next?: TlsaRecord;
  /** The RRset in DNS now. */
  published: TlsaRecord[];
  ttl: number;
  /** When the deployed key's record was first published (or first seen in DNS). */
  publishedAt?: Date;
  now: Date;
}

export interface DeployVerdict {
  /**
   * safe: the deployed key's record has been in DNS for at least TTL_FACTOR x TTL; too-early: it is in DNS, but
   * not for that long yet; not-published: DNS lacks it, so DANE senders refuse the server now (RFC 7672 §2.2).
   */
  status: 'safe' | 'too-early' | 'not-published';
  /** The RRset to publish now (never without a record that still serves: the old key is dropped only when safe). */
  publish: TlsaRecord[];
  /** Records of `published` left out of `publish`. */
  dropped: TlsaRecord[];
  /** too-early and not-published: when the deployed key becomes safe (if published now for not-published). */
  safeAt?: Date;
}

export function checkDeployment(input: DeployCheckInput): DeployVerdict {
  const has = (set: TlsaRecord[], r: TlsaRecord) => set.some((p) => sameRecord(p, r));
  const add = (set: TlsaRecord[], r: TlsaRecord | undefined) =>
    r === undefined || has(set, r) ? set : [...set, r];
  const waitMs = TTL_FACTOR * input.ttl * 1000;
  if (!has(input.published, input.deployed)) {
    const publish = add(add(input.published, input.deployed), input.next);
    return { status: 'not-published', publish, dropped: [], safeAt: new Date(input.now.getTime() + waitMs) };
  }
  const since = input.publishedAt ?? input.now;
  const safeAt = new Date(since.getTime() + waitMs);
  if (safeAt.getTime() > input.now.getTime()) {
    return { status: 'too-early', publish: add(input.published, input.next), dropped: [], safeAt };
  }
  const previous = input.previous;
  const drop = previous !== undefined && !sameRecord(previous, input.deployed) ? previous : undefined;
  const kept = input.published.filter((r) => drop === undefined || !sameRecord(r, drop));
  return {
    status: 'safe',
    publish: add(kept, input.next),
    dropped: input.published.filter((r) => !has(kept, r)),
  };
}

export function sameRecord(a: TlsaRecord, b: TlsaRecord): boolean {
  return (
    a.usage === b.usage &&
    a.selector === b.selector &&
    a.matchingType === b.matchingType &&
    a.data.equals(b.data)
  );
}

/** "2h 10m" / "600 s" for the wait. */
function duration(seconds: number): string {
  if (seconds < 3600) return `${seconds} s`;
  const h = Math.floor(seconds / 3600);
  const m = Math.round((seconds % 3600) / 60);
  return m === 0 ? `${h} h (${seconds} s)` : `${h} h ${m} min (${seconds} s)`;
}

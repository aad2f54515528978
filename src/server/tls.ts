// Certificates of the HTTPS listener, chosen by SNI (RFC 6066 §3) per host name mta-sts.<domain>
// (RFC 8461 §3.3: the policy host must present a certificate valid for that name). Sources:
//   <dataDir>/certs/<host>/fullchain.pem + privkey.pem   (ACME writes here; certbot's file names)
//   settings.certificates[<host>] = { cert, key }          (files anywhere, e.g. /etc/letsencrypt/live)
// The files are reloaded without a restart when they change: fs.watch on the folders gives a prompt
// reload, and a stat poll (mtime, size, inode) catches what watching misses (network file systems,
// symlink swaps). A pair that fails to load (half-written, key and certificate that do not match)
// keeps the previous certificate in service and is retried on the next change or poll.
// A handshake whose SNI names no known host (or that has no SNI) gets the default certificate when
// one is configured, otherwise it is refused: serving some other domain's certificate would only
// fail validation on the client side and reveal which domains are hosted here.
import { X509Certificate } from 'node:crypto';
import { type FSWatcher, mkdirSync, readdirSync, readFileSync, statSync, watch } from 'node:fs';
import { join } from 'node:path';
import tls, { type SecureContext } from 'node:tls';
import type { Logger } from 'pino';
import { normalizeHost } from '../common/hostname.js';
import type { CertificateFiles } from './config.js';
import type { ServerMetrics } from './metrics.js';

export const FULLCHAIN_FILE = 'fullchain.pem';
export const PRIVKEY_FILE = 'privkey.pem';
/** Stat poll interval (the fallback when fs.watch says nothing). */
export const CERT_POLL_MS = 5000;
const WATCH_DEBOUNCE_MS = 100;
// Lower-case host names only: that is how SNI is compared.
const HOST_DIR = /^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{1,63}$/;

/** The folder <dataDir>/certs where per-host certificate folders live. */
export function certsDir(dataDir: string): string {
  return join(dataDir, 'certs');
}

/** The files ACME writes and the store reads for `host` under `certsDirectory`. */
export function hostCertificateFiles(certsDirectory: string, host: string): CertificateFiles {
  return { cert: join(certsDirectory, host, FULLCHAIN_FILE), key: join(certsDirectory, host, PRIVKEY_FILE) };
}

export interface LoadedCertificate {
  host: string;
  files: CertificateFiles;
  context: SecureContext;
  /** The leaf certificate. */
  leaf: X509Certificate;
  /** Where it came from: the certs folder or the settings. */
  source: 'certs-dir' | 'settings';
  pem: { cert: Buffer; key: Buffer };
}

export interface CertificateStoreOptions {
  /** <dataDir>/certs; created when missing. */
  certsDirectory: string;
  /** Certificates from the settings, by host (they win over the certs folder). */
  configured?: Record<string, CertificateFiles>;
  defaultCertificate?: CertificateFiles;
  logger: Logger;
  metrics?: ServerMetrics;
  pollMs?: number;
  /** Watch the folders with fs.watch (default true); the stat poll runs either way. */
  watch?: boolean;
}

/** File identity used to notice a change without reading the file. */
function fingerprint(files: CertificateFiles): string | undefined {
  try {
    const a = statSync(files.cert);
    const b = statSync(files.key);
    return `${a.ino}:${a.size}:${a.mtimeMs}|${b.ino}:${b.size}:${b.mtimeMs}`;
  } catch {
    return undefined;
  }
}

export class CertificateStore {
  private readonly certificates = new Map<string, LoadedCertificate & { fingerprint: string }>();
  private readonly failed = new Map<string, string>();
  private defaultContext: SecureContext | undefined;
  private defaultPem: { cert: Buffer; key: Buffer } | undefined;
  private defaultFingerprint: string | undefined;
  private readonly defaultListeners: Array<(pair: { cert: Buffer; key: Buffer }) => void> = [];
  private readonly watchers = new Map<string, FSWatcher>();
  private pollTimer: NodeJS.Timeout | undefined;
  private debounceTimer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly options: CertificateStoreOptions) {}

  /** Load everything, then keep watching and polling for changes. */
  start(): void {
    mkdirSync(this.options.certsDirectory, { recursive: true });
    this.reload();
    this.watch(this.options.certsDirectory);
    this.pollTimer = setInterval(() => this.reload(), this.options.pollMs ?? CERT_POLL_MS);
    this.pollTimer.unref();
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.pollTimer);
    clearTimeout(this.debounceTimer);
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
  }

  /** The SNICallback of the HTTPS server. */
  readonly sniCallback = (
    servername: string,
    callback: (err: Error | null, ctx?: SecureContext) => void,
  ): void => {
    const context = this.contextFor(servername) ?? this.defaultContext;
    if (context) callback(null, context);
    else callback(new Error(`no certificate for server name "${servername}"`));
  };

  /** The context for an SNI server name (compared without case and trailing dot). */
  contextFor(servername: string): SecureContext | undefined {
    return this.certificates.get(normalizeHost(servername))?.context;
  }

  /** The default certificate and key (PEM), for handshakes without SNI; undefined: they fail. */
  get defaultPair(): { cert: Buffer; key: Buffer } | undefined {
    return this.defaultPem;
  }

  /** Called with the new default pair whenever it is reloaded. */
  onDefaultChange(listener: (pair: { cert: Buffer; key: Buffer }) => void): void {
    this.defaultListeners.push(listener);
  }

  /** The certificate serving `host`, if any. */
  get(host: string): LoadedCertificate | undefined {
    return this.certificates.get(normalizeHost(host));
  }

  hosts(): string[] {
    return [...this.certificates.keys()].sort();
  }

  /** Look at every source now: load what is new or changed, drop what is gone. */
  reload(): void {
    if (this.stopped) return;
    const wanted = this.sources();
    for (const [host, entry] of wanted) this.loadIfChanged(host, entry.files, entry.source);
    for (const host of [...this.certificates.keys()]) {
      if (!wanted.has(host)) {
        this.certificates.delete(host);
        this.options.logger.info({ host }, 'certificate removed');
      }
    }
    this.loadDefault();
  }

  private sources(): Map<string, { files: CertificateFiles; source: LoadedCertificate['source'] }> {
    const found = new Map<string, { files: CertificateFiles; source: LoadedCertificate['source'] }>();
    const dir = this.options.certsDirectory;
    let names: string[] = [];
    try {
      names = readdirSync(dir, { withFileTypes: true })
        .filter((d) => d.isDirectory() || d.isSymbolicLink())
        .map((d) => d.name);
    } catch {
      // The folder was removed: nothing from it.
    }
    for (const name of names) {
      if (!HOST_DIR.test(name)) continue;
      found.set(name, { files: hostCertificateFiles(dir, name), source: 'certs-dir' });
      this.watch(join(dir, name));
    }
    for (const [host, files] of Object.entries(this.options.configured ?? {})) {
      found.set(normalizeHost(host), { files, source: 'settings' });
    }
    return found;
  }

  private loadIfChanged(host: string, files: CertificateFiles, source: LoadedCertificate['source']): void {
    const print = fingerprint(files);
    if (print === undefined) {
      // Files missing (a folder being set up, or ACME about to write): keep what we have.
      return;
    }
    if (this.certificates.get(host)?.fingerprint === print || this.failed.get(host) === print) return;
    try {
      const loaded = loadCertificate(host, files, source);
      const previous = this.certificates.get(host);
      this.certificates.set(host, { ...loaded, fingerprint: print });
      this.failed.delete(host);
      this.options.metrics?.certificateLoads.inc({ host, result: 'loaded' });
      this.options.logger.info(
        { host, notAfter: loaded.leaf.validTo, serial: loaded.leaf.serialNumber, files: files.cert },
        previous ? 'certificate reloaded' : 'certificate loaded',
      );
    } catch (err) {
      this.failed.set(host, print);
      this.options.metrics?.certificateLoads.inc({ host, result: 'failed' });
      this.options.logger.warn(
        { host, files, err: (err as Error).message },
        this.certificates.has(host)
          ? 'new certificate files do not load; keeping the previous one'
          : 'certificate does not load',
      );
    }
  }

  private loadDefault(): void {
    const files = this.options.defaultCertificate;
    if (!files) return;
    const print = fingerprint(files);
    if (print === undefined || print === this.defaultFingerprint) return;
    try {
      const loaded = loadCertificate('(default)', files, 'settings');
      const changed = this.defaultPem !== undefined;
      this.defaultContext = loaded.context;
      this.defaultPem = loaded.pem;
      this.defaultFingerprint = print;
      if (changed) for (const listener of this.defaultListeners) listener(loaded.pem);
    } catch (err) {
      this.options.logger.warn({ files, err: (err as Error).message }, 'default certificate does not load');
    }
  }

  private watch(dir: string): void {
    if (this.watchers.has(dir) || this.stopped || this.options.watch === false) return;
    try {
      const watcher = watch(dir, { persistent: false }, () => this.scheduleReload());
      watcher.on('error', () => {
        watcher.close();
        this.watchers.delete(dir);
      });
      this.watchers.set(dir, watcher);
    } catch {
      // Not watchable here (or gone): the poll covers it.
    }
  }

  private scheduleReload(): void {
    clearTimeout(this.debounceTimer);
    this.debounceTimer = setTimeout(() => this.reload(), WATCH_DEBOUNCE_MS);
    this.debounceTimer.unref();
  }
}

/** Read and check a certificate/key pair; throws with what is wrong. */
export function loadCertificate(
  host: string,
  files: CertificateFiles,
  source: LoadedCertificate['source'],
): LoadedCertificate {
  const cert = readFileSync(files.cert);
  const key = readFileSync(files.key);
  // createSecureContext checks that the key belongs to the leaf ("key values mismatch").
  const context = tls.createSecureContext({ cert, key });
  const leaf = new X509Certificate(cert);
  return { host, files, context, leaf, source, pem: { cert, key } };
}

// The lab a bulk `mxguard check` runs against in the CLI tests (the survey lab of issue 14): a lab DNS server
// (test/lab/dns-server.ts) answering the zones given, a lab SMTP server with STARTTLS and a certificate for one
// MX name from a test CA, all on loopback; and the check options that point a run at it.
//
//   const lab = await startSurveyLab('mx.shared.test', zones);
//   await runCliAsync(['check', '--file', list, ...lab.checkOptions()]);
//   await lab.stop();
import { type LabDnsServer, type LabRecord, type LabZone, startDnsServer } from '../lab/dns-server.js';
import { labCert } from '../lab/https-server.js';
import { type LabSmtpServer, startSmtpServer } from '../lab/smtp-server.js';
import { standardChain, TestPki } from './pki.js';

export interface SurveyLab {
  dns: LabDnsServer;
  smtp: LabSmtpServer;
  /** --resolver, --ca-file, --smtp-port, --https-port 1 (no policy host), --timeout, --allow-private. */
  checkOptions(timeoutSeconds?: number): string[];
  stop(): Promise<void>;
}

/** An MX record of `domain` pointing to `exchange`. */
export const mxRecord = (domain: string, exchange: string): LabRecord => ({
  name: domain,
  type: 'MX',
  data: { preference: 10, exchange },
});

/** Starts the lab; the SMTP server's certificate names `certifiedMx`. */
export async function startSurveyLab(certifiedMx: string, zones: LabZone[]): Promise<SurveyLab> {
  const pki = TestPki.create();
  try {
    const chain = standardChain(pki, { host: certifiedMx });
    const smtp = await startSmtpServer({ cert: labCert(chain.leaf.key, [chain.leaf, chain.intermediate]) });
    const dns = await startDnsServer(zones).catch(async (err) => {
      await smtp.stop();
      throw err;
    });
    return {
      dns,
      smtp,
      checkOptions: (timeoutSeconds = 5) => [
        '--resolver',
        `${dns.host}:${dns.port}`,
        '--ca-file',
        chain.root.certPath,
        '--smtp-port',
        String(smtp.port),
        '--https-port',
        '1',
        '--timeout',
        String(timeoutSeconds),
        '--allow-private',
      ],
      async stop() {
        await Promise.all([dns.stop(), smtp.stop()]);
        pki.remove();
      },
    };
  } catch (err) {
    pki.remove();
    throw err;
  }
}

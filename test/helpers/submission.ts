// An SMTP submission server on loopback for alert-mail tests (smtp-server): STARTTLS (or implicit TLS)
// with a test certificate, AUTH PLAIN/LOGIN for one user, and every message it accepts recorded with its
// envelope and whether the session was under TLS.
import type { AddressInfo } from 'node:net';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';

export const SUBMISSION_USER = 'alert';
export const SUBMISSION_PASSWORD = 'right-password';

export interface Submission {
  from: string;
  to: string[];
  /** The message as received (headers and body). */
  raw: string;
  /** The session was under TLS when the message came. */
  secure: boolean;
}

export interface SubmissionServer {
  port: number;
  messages: Submission[];
  /** Each AUTH tried: the user name and whether the session was under TLS. */
  auths: Array<{ user: string; secure: boolean }>;
  close(): Promise<void>;
}

/** Starts the server on 127.0.0.1 (a free port); `options` override smtp-server's (e.g. secure, hideSTARTTLS). */
export async function startSubmissionServer(
  tls: { key: string; cert: string },
  options: Partial<SMTPServerOptions> = {},
): Promise<SubmissionServer> {
  const messages: Submission[] = [];
  const auths: SubmissionServer['auths'] = [];
  const server = new SMTPServer({
    key: tls.key,
    cert: tls.cert,
    authMethods: ['PLAIN', 'LOGIN'],
    logger: false,
    onAuth(auth, session, callback) {
      auths.push({ user: auth.username ?? '', secure: session.secure });
      if (auth.username === SUBMISSION_USER && auth.password === SUBMISSION_PASSWORD) {
        return callback(null, { user: SUBMISSION_USER });
      }
      return callback(Object.assign(new Error('Invalid username or password'), { responseCode: 535 }));
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        messages.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          raw: Buffer.concat(chunks).toString('utf8'),
          secure: session.secure,
        });
        callback();
      });
    },
    ...options,
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.server.address() as AddressInfo;
  return {
    port,
    messages,
    auths,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

// The key, certificate chain and trust anchor of a TLS server in a test (HTTPS receiver, SMTP server):
// a standard chain from the test PKI for one host name, as PEM strings ready for node:tls options.
import { readFileSync } from 'node:fs';
import { standardChain, type TestPki } from './pki.js';

export interface ServerTls {
  /** The leaf's private key. */
  key: string;
  /** Leaf then intermediate, as the server sends them. */
  cert: string;
  /** The root the client has to trust (an extra CA, like --ca-file). */
  ca: string;
}

export function serverTls(pki: TestPki, host = 'localhost'): ServerTls {
  const chain = standardChain(pki, { prefix: `${host}-`, host, sans: [host] });
  return {
    key: readFileSync(chain.leaf.key.path, 'utf8'),
    cert: chain.leaf.pem + chain.intermediate.pem,
    ca: chain.root.pem,
  };
}

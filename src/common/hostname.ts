// Host names as mxguard compares and checks them: the one normaliser and the one validator, for MX hosts,
// policy mx patterns, mail domains, TLSA owner names and every setting that names a host.

/** Lower case, surrounding white space and one trailing dot removed: the form host names are compared in. */
export function normalizeHost(host: string): string {
  return host.trim().toLowerCase().replace(/\.$/, '');
}

// RFC 5321 §4.1.2: sub-domain = Let-dig [Ldh-str]; no hyphen at either end of a label.
const LDH_LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$/;

/**
 * Why an ASCII host name (no trailing dot) is not an RFC 5321 §4.1.2 Domain within the DNS limits
 * of RFC 1035 §2.3.4, or undefined when it is one.
 */
export function hostNameProblem(domain: string): string | undefined {
  if (domain.length > 253) return 'longer than 253 characters';
  for (const label of domain.split('.')) {
    if (label === '') return 'has an empty label (two dots in a row, or a leading dot)';
    if (label.length > 63) return `label "${label}" is longer than 63 characters`;
    if (label.includes('_')) return `label "${label}" contains "_", which host names may not`;
    if (!LDH_LABEL.test(label)) {
      return /^-|-$/.test(label)
        ? `label "${label}" starts or ends with "-"`
        : `label "${label}" may only contain letters, digits and "-"`;
    }
  }
  return undefined;
}

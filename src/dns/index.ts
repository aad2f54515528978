// The DNS layer: a Resolver interface, the wire client, resolver configuration and name helpers.
export { DnsClient, type DnsClientOptions, describeServer } from './client.js';
export { DnsError, type DnsErrorCode } from './error.js';
export { hostnameProblem, isValidHostname, normalizeName, queryNameProblem, sameName } from './names.js';
export { DNS_PORT, parseResolvConf, parseResolverOption, systemResolvers } from './resolvconf.js';
export {
  DNSSEC_EDE_CODES,
  type DnsOutcome,
  type DnsRecord,
  type DnsRecordType,
  type DnsResult,
  type DnsServer,
  type ExtendedDnsError,
  type FailureClassification,
  joinTxt,
  type Lookup,
  type MxLookup,
  type MxRecord,
  type QueryOptions,
  type Resolver,
  ResolverBase,
  type TlsaRecord,
  type ValidatingCheck,
} from './resolver.js';

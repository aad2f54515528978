// The settings of the common network options (ARCHITECTURE.md "Common options") as config keys, for the
// long-running commands that look things up: `resolver`, `caFile`, `allowPrivate`, `timeout`. One schema,
// one set of option names, one set of defaults, spread into each command's own schema.
import { z } from 'zod';
import { booleanText, commaList, numberText, wholeNumber } from './load.js';

/** The keys, spread into a command's zod object. */
export const NETWORK_KEYS = {
  resolver: z.array(z.string().min(1)),
  caFile: z.array(z.string().min(1, 'must not be empty')),
  allowPrivate: z.boolean(),
  timeout: wholeNumber(1, 3600),
};

/** Each key's command-line option. */
export const NETWORK_OPTIONS = {
  resolver: '--resolver',
  caFile: '--ca-file',
  allowPrivate: '--allow-private',
  timeout: '--timeout',
} as const;

/** The network keys with their defaults: the system resolver, no extra CA, public addresses, 30 s. */
export interface NetworkSettings {
  /** Empty: the system's /etc/resolv.conf. */
  resolver: string[];
  caFile: string[];
  allowPrivate: boolean;
  timeoutSeconds: number;
}

type NetworkLayer = Partial<{ resolver: string[]; caFile: string[]; allowPrivate: boolean; timeout: number }>;

export function networkSettings(m: NetworkLayer): NetworkSettings {
  return {
    resolver: m.resolver ?? [],
    caFile: m.caFile ?? [],
    allowPrivate: m.allowPrivate ?? false,
    timeoutSeconds: m.timeout ?? 30,
  };
}

/** Text of a network key from a variable or an option (lists comma-separated), or undefined if not one. */
export function networkText(key: string, text: string): unknown {
  switch (key) {
    case 'resolver':
    case 'caFile':
      return commaList(text);
    case 'allowPrivate':
      return booleanText(text);
    case 'timeout':
      return numberText(text);
    default:
      return undefined;
  }
}

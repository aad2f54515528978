// Provider presets: the MX patterns, SPF include and DKIM selectors of common hosted mail services.
// Data only; `records`, `policy` and (later) `check` read it.

export interface Preset {
  name: string;
  description: string;
  /** MTA-STS policy `mx` patterns (RFC 8461 §3.2). */
  mx: string[];
  /** SPF mechanisms that authorise the provider's outbound servers. */
  spf: string;
  /** DKIM selectors the provider publishes under (for checks). */
  dkimSelectors: string[];
  /** Extra advice printed with the records. */
  notes: string[];
}

export const PRESETS: Record<string, Preset> = {
  'exchange-online': {
    name: 'exchange-online',
    description: 'Microsoft 365 / Exchange Online',
    mx: ['*.mail.protection.outlook.com'],
    spf: 'include:spf.protection.outlook.com',
    dkimSelectors: ['selector1', 'selector2'],
    notes: [
      'DANE-enabled tenants get an MX like <tenant>.<x>-v1.mx.microsoft: add it with --mx (the exact host, or ' +
        '*.<x>-v1.mx.microsoft). A policy wildcard covers one label only (RFC 8461 §4.1), so ' +
        '*.mx.microsoft does NOT cover it.',
    ],
  },
  'google-workspace': {
    name: 'google-workspace',
    description: 'Google Workspace (Gmail)',
    mx: ['smtp.google.com', 'aspmx.l.google.com', '*.aspmx.l.google.com'],
    spf: 'include:_spf.google.com',
    dkimSelectors: ['google'],
    notes: [],
  },
};

export function presetNames(): string[] {
  return Object.keys(PRESETS);
}

/**
 * Patterns that cannot cover a Microsoft DANE-style MX (<tenant>.<x>-v1.mx.microsoft): a wildcard one
 * label above (e.g. `*.mx.microsoft`) looks right but matches only one label.
 */
export function misleadingMicrosoftWildcard(pattern: string): boolean {
  return /^\*\.mx\.microsoft\.?$/i.test(pattern);
}

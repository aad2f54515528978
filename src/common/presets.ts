// Provider presets: the MX patterns, SPF include and DKIM selectors of common hosted mail services.
// Data only; `records`, `policy` and `check --preset` (src/check/provider.ts) read it.

/** A form of MX host name a provider hands out, recognised by its suffix. */
export interface ProviderMxForm {
  /** The host itself or any name below it ("mail.protection.outlook.com" covers "<tenant>.mail.protection.outlook.com"). */
  suffix: string;
  /** What it is, for people. */
  label: string;
  /**
   * current: what the provider gives new setups today; legacy: still served, but the provider moves domains off it
   * (the policy should already cover the current form before the MX changes).
   */
  era: 'current' | 'legacy';
  /** A host of this form that a policy must match (for the "ready to move" finding); absent when tenant-specific. */
  example?: string;
}

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
  /** The provider's MX host forms, for `check --preset`. */
  mxForms: ProviderMxForm[];
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
    mxForms: [
      // The DNSSEC-signed endpoint of inbound SMTP DANE: <domain-with-dashes>.<x>-v1.mx.microsoft, one per tenant domain.
      {
        suffix: 'mx.microsoft',
        label: 'the DNSSEC-signed Exchange Online endpoint (inbound DANE)',
        era: 'current',
      },
      // outlook.com is not DNSSEC-signed: no DANE for mail to these hosts.
      {
        suffix: 'mail.protection.outlook.com',
        label: 'the Exchange Online endpoint without DNSSEC',
        era: 'legacy',
      },
    ],
  },
  'google-workspace': {
    name: 'google-workspace',
    description: 'Google Workspace (Gmail)',
    mx: ['smtp.google.com', 'aspmx.l.google.com', '*.aspmx.l.google.com'],
    spf: 'include:_spf.google.com',
    dkimSelectors: ['google'],
    notes: [],
    mxForms: [
      {
        suffix: 'smtp.google.com',
        label: "Google's single MX for new setups",
        era: 'current',
        example: 'smtp.google.com',
      },
      {
        suffix: 'aspmx.l.google.com',
        label: "Google's classic MX set",
        era: 'legacy',
        example: 'aspmx.l.google.com',
      },
      {
        suffix: 'googlemail.com',
        label: "Google's classic backup MX hosts",
        era: 'legacy',
        example: 'aspmx2.googlemail.com',
      },
    ],
  },
};

/** The provider MX form a host name has, if any (the longest matching suffix). */
export function providerMxForm(preset: Preset, host: string): ProviderMxForm | undefined {
  const name = host.toLowerCase().replace(/\.$/, '');
  return preset.mxForms
    .filter((f) => name === f.suffix || name.endsWith(`.${f.suffix}`))
    .sort((a, b) => b.suffix.length - a.suffix.length)[0];
}

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

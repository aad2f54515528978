import type { Command } from 'commander';

// Placeholder until this command lands; replaced by the real implementation.
export function register(_program: Command): void {}

/** The compiled CLI's default folder, dist/cli (see build-cli.mjs). */
export const CLI_OUTDIR: string;
export const SANDBOX_BUNDLE: string;
/** Builds the CLI into `outdir` (default dist/cli); resolves to the bin's path. */
export function buildCli(outdir?: string): Promise<string>;

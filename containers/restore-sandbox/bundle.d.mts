/** Bundles the sandbox entry point into `outfile` (see bundle.mjs); resolves to `outfile`. */
export function bundleSandbox(outfile: string): Promise<string>;

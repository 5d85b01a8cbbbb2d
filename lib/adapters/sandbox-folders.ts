import { rm } from 'node:fs/promises';

/**
 * The `bv-sandbox-*` folders this process made and has not removed yet. Each restore removes
 * its own; an interrupted run removes whatever is left (a restore that did not stop in time).
 */
const live = new Set<string>();

export function sandboxFolderMade(folder: string): void {
  live.add(folder);
}

export async function removeSandboxFolder(folder: string): Promise<void> {
  await rm(folder, { recursive: true, force: true });
  live.delete(folder);
}

/** Removes every folder still live; returns how many there were. */
export async function removeLiveSandboxFolders(): Promise<number> {
  const left = [...live];
  await Promise.all(left.map((folder) => removeSandboxFolder(folder).catch(() => undefined)));
  return left.length;
}

import type { Finding } from '../findings.ts';
import { finding } from '../findings.ts';
import type { Backup, ContentDigest } from '../model.ts';
import type { RestoredFile } from './file-writer.ts';
import type { OnDisk } from './read-back.ts';
import type { RestoreRequest } from './request.ts';
import type { SandboxTree } from './sandbox-tree.ts';

/**
 * What the file system holds must be what was written (most files were read back while extracting).
 * With `first`, the files it selects are read back first, then `verified()` is called while the rest
 * are read; the findings are the same, in the same order.
 */
export async function verifyOnDisk(
  tree: SandboxTree,
  backup: Backup,
  findings: Finding[],
  first?: { files: (file: RestoredFile) => boolean; verified: () => void },
): Promise<void> {
  let mismatches: OnDisk[];
  if (first) {
    const files = [...tree.files.values()];
    const early = await tree.verifyOnDisk(files.filter(first.files));
    first.verified();
    const order = new Map(files.map((file, at) => [file, at]));
    mismatches = [...early, ...(await tree.verifyOnDisk(files.filter((file) => !first.files(file))))].sort(
      (a, b) => (order.get(a.file) ?? 0) - (order.get(b.file) ?? 0),
    );
  } else mismatches = await tree.verifyOnDisk();
  for (const onDisk of mismatches) {
    const { file } = onDisk;
    findings.push(
      finding(
        'RESTORE_MISMATCH',
        `"${file.path}" read back from disk (${onDisk.size} bytes, CRC-32 ${hex32(onDisk.crc32)}) differs from what was written (${file.size} bytes, CRC-32 ${hex32(file.crc32)}): the sandbox storage corrupted it`,
        { backup: backup.id, object: file.path },
      ),
    );
  }
  for (const link of tree.verifyLinksOnDisk()) {
    const found = link.found === undefined ? 'no symbolic link' : `a link to "${link.found}"`;
    findings.push(
      finding(
        'RESTORE_MISMATCH',
        `"${link.path}" read back from disk is ${found}, but the backup's link points at "${link.target}": the sandbox storage changed it`,
        { backup: backup.id, object: link.path },
      ),
    );
  }
}

export async function compareWithReferences(request: RestoreRequest, tree: SandboxTree, findings: Finding[]) {
  const { backup } = request;
  const mismatch = (object: string, message: string) =>
    findings.push(finding('RESTORE_MISMATCH', message, { backup: backup.id, object }));
  const expect = (source: string, filePath: string, sha256: string | undefined, size: number | undefined) => {
    const file = tree.files.get(filePath);
    if (!file) {
      mismatch(filePath, `"${filePath}" is listed in ${source} but was not restored`);
      return;
    }
    if (size !== undefined && file.size !== size) {
      mismatch(filePath, `"${filePath}" restored with ${file.size} bytes; ${source} says ${size}`);
    } else if (sha256 !== undefined && sha256 !== '' && file.sha256 !== sha256.toLowerCase()) {
      mismatch(filePath, `"${filePath}" restored with SHA-256 ${file.sha256}; ${source} says ${sha256}`);
    }
  };

  if (backup.kind === 'directory') {
    for (const member of backup.members) {
      const filePath = tree.relative(member.path, 'object');
      expect('the catalogue', filePath, undefined, member.size);
      const integritySha256 = request.objectSha256?.[member.key];
      if (integritySha256) expect('the integrity pass', filePath, integritySha256, undefined);
    }
    if (tree.files.size !== backup.members.length) {
      mismatch(backup.key, `${tree.files.size} files restored, the catalogue lists ${backup.members.length}`);
    }
  }

  if (request.references && request.references.length > 0) {
    let listedFiles = 0;
    let listedLinks = 0;
    for (const digest of request.references) {
      if (digest.type === 'symlink') {
        listedLinks += 1;
        expectLink(tree, digest, mismatch);
        continue;
      }
      if (digest.type !== 'file' && digest.type !== 'hardlink') continue;
      const filePath = safeRelative(tree, digest.path);
      if (filePath === undefined) continue;
      listedFiles += 1;
      if (digest.type === 'file') expect('the integrity pass', filePath, digest.sha256, digest.size);
      else expect('the integrity pass', filePath, undefined, undefined);
    }
    if (listedFiles !== tree.files.size) {
      mismatch(
        backup.key,
        `${tree.files.size} files restored, the integrity pass read ${listedFiles}: the backup changed between the passes or the restore lost files`,
      );
    }
    if (listedLinks !== tree.links.size) {
      mismatch(
        backup.key,
        `${tree.links.size} symbolic links restored, the integrity pass read ${listedLinks}: the backup changed between the passes or the restore lost links`,
      );
    }
  }
}

/** A link is data: its target text must be what the integrity pass read (it is never followed). */
function expectLink(
  tree: SandboxTree,
  digest: ContentDigest,
  mismatch: (object: string, message: string) => void,
): void {
  const linkPath = safeRelative(tree, digest.path);
  if (linkPath === undefined) return;
  const target = tree.links.get(linkPath);
  if (target === undefined) {
    mismatch(
      linkPath,
      `symbolic link "${linkPath}" is listed in the integrity pass but was not restored as a link`,
    );
  } else if (digest.linkTarget !== undefined && target !== digest.linkTarget) {
    mismatch(
      linkPath,
      `symbolic link "${linkPath}" restored pointing at "${target}"; the integrity pass read "${digest.linkTarget}"`,
    );
  }
}

function safeRelative(tree: SandboxTree, raw: string): string | undefined {
  try {
    return tree.relative(raw) || undefined;
  } catch {
    return undefined;
  }
}
function hex32(value: number): string {
  return value.toString(16).padStart(8, '0');
}

/**
 * The members of an archive as they are read: counted against the restore limits, hashed,
 * recorded in the member table (for hard links and the root manifest) and reported one by one.
 */
import { MANIFEST_NAME, normalizeRelativePath } from '../manifest.ts';
import type { ContentDigest } from '../model.ts';
import { countsAsEntry, type RestoreLimits } from '../restore/limits.ts';
import type { RootManifestCheck } from './archive-inspection.ts';
import { HashingSink, ManifestCapture } from './member-sinks.ts';
import { MemberTable } from './member-table.ts';
import { checkRootManifest } from './root-manifest.ts';
import type { TarEntryHeader, TarEntrySink } from './tar-parser.ts';

export class ArchiveMembers {
  /** Tar entries of every kind; 1 for a plain compressed file. */
  entries = 0;
  /** Regular files (incl. hard links to them). */
  files = 0;
  /** Bytes of file content (sparse files at their real size). */
  contentBytes = 0;
  /** Bytes fed to member hashes. */
  readonly counter = { hashed: 0 };
  private readonly members: MemberTable;
  private manifestText: Buffer | undefined;
  private manifestMemberPath: string | undefined;
  private manifestTooLarge = false;

  /** `emit` is called for each member when given (it must not throw). */
  constructor(
    private readonly limits: RestoreLimits,
    private readonly emit: ((digest: ContentDigest) => void) | undefined,
    memberTableBytes: number | undefined,
  ) {
    this.members = new MemberTable(memberTableBytes);
  }

  /** A tar entry: where a regular file's content goes; undefined for other kinds. */
  entry(header: TarEntryHeader): TarEntrySink | undefined {
    const { limits, members } = this;
    this.entries++;
    const normalized = normalizeRelativePath(header.path);
    const path = normalized ?? header.path;
    if (countsAsEntry(header.type, normalized ?? '')) limits.entry(path);
    if (header.type === 'file') limits.declare(header.size, path);
    if (header.type !== 'file') {
      let size = 0;
      let digest: Buffer = MemberTable.EMPTY_DIGEST;
      if (header.type === 'hardlink') {
        const target = members.find(normalizeRelativePath(header.linkTarget ?? '') ?? '');
        const targetType = target === undefined ? undefined : members.type(target);
        if (target !== undefined && (targetType === 'file' || targetType === 'hardlink')) {
          this.files++;
          size = members.size(target);
          this.contentBytes += size;
          digest = members.digest(target);
        }
      }
      members.add(path, header.type, size, digest, header.linkTarget);
      this.emit?.({
        path,
        size,
        sha256: digest.toString('hex'),
        type: header.type,
        ...(header.linkTarget !== undefined ? { linkTarget: header.linkTarget } : {}),
      });
      return undefined;
    }
    this.files++;
    const hashing = new HashingSink(path, limits, this.counter, (digest, size) => {
      this.contentBytes += size;
      members.add(path, 'file', size, digest);
      this.emit?.({ path, size, sha256: digest.toString('hex'), type: 'file' });
    });
    if (path === MANIFEST_NAME) {
      this.manifestMemberPath = header.path;
      return new ManifestCapture(hashing, header.size, (text) => {
        this.manifestText = text;
        this.manifestTooLarge = text === undefined;
      });
    }
    return hashing;
  }

  /** The content of a plain compressed file, the archive's one member. */
  plainFile(path: string): TarEntrySink {
    this.entries = 1;
    this.files = 1;
    this.limits.entry(path);
    return new HashingSink(path, this.limits, this.counter, (digest, size) => {
      this.contentBytes = size;
      this.emit?.({ path, size, sha256: digest.toString('hex'), type: 'file' });
    });
  }

  /** The root SHA256SUMS checked against the members, when the archive had one. */
  rootManifest(incomplete: boolean): RootManifestCheck | undefined {
    if (this.manifestMemberPath === undefined) return undefined;
    return checkRootManifest(
      this.manifestMemberPath,
      this.manifestText,
      this.manifestTooLarge,
      this.members,
      incomplete,
    );
  }
}

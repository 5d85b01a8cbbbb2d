import { parseSidecar } from '../manifest.ts';
import type { ObjectStore } from '../ports.ts';
import type { FindingList } from './finding-list.ts';
import { compareReference, type ObjectState } from './object-state.ts';
import { isAbort, readSmallObject } from './reading.ts';

const MAX_SIDECAR_BYTES = 64 * 1024;

/** An archive's `.sha256` sidecar (sha256sum's format) as a reference of its stored bytes. */
export async function compareSidecar(
  sidecarKey: string,
  store: ObjectStore,
  state: ObjectState,
  findings: FindingList,
  signal?: AbortSignal,
): Promise<void> {
  const sidecarPath = sidecarKey.split('/').pop() ?? sidecarKey;
  try {
    const { text } = await readSmallObject(store, sidecarKey, MAX_SIDECAR_BYTES);
    const parsed = parseSidecar(text, state.key);
    if (parsed.ok) {
      compareReference(
        state,
        parsed.sha256,
        `the sidecar ${sidecarPath}`,
        findings,
        'the archive was changed or damaged after the sidecar was written; restore it from another copy',
      );
    } else {
      state.mismatch = true;
      findings.add(
        'CHECKSUM_MISMATCH',
        `the sidecar ${sidecarPath} cannot be used (${parsed.message}): ${state.path} cannot be verified against it; rewrite it with sha256sum`,
        sidecarPath,
      );
    }
  } catch (error) {
    if (isAbort(error, signal)) throw error;
    findings.unreadable(`the sidecar ${sidecarPath}`, error, sidecarPath);
  }
}

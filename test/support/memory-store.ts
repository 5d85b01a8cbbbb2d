import { Readable } from 'node:stream';
import { StoreError } from '../../lib/core/errors.ts';
import type { ObjectInfo } from '../../lib/core/model.ts';
import type { ObjectStore } from '../../lib/core/ports.ts';

/** An in-memory implementation of the store port, for tests of code above the port. */
export class MemoryStore implements ObjectStore {
  readonly objects = new Map<string, { body: Buffer; info: ObjectInfo }>();
  listedCount = 0;

  constructor(
    readonly url = 'mem://test',
    files: Record<
      string,
      string | Buffer | { body: string | Buffer; lastModified?: Date; storageClass?: string }
    > = {},
  ) {
    for (const [key, value] of Object.entries(files)) {
      if (typeof value === 'string' || Buffer.isBuffer(value)) this.put(key, value);
      else this.put(key, value.body, value);
    }
  }

  put(key: string, body: string | Buffer, extra: { lastModified?: Date; storageClass?: string } = {}): void {
    const buffer = Buffer.isBuffer(body) ? body : Buffer.from(body);
    const info: ObjectInfo = { key, size: buffer.length, lastModified: extra.lastModified ?? new Date(0) };
    if (extra.storageClass) info.storageClass = extra.storageClass;
    this.objects.set(key, { body: buffer, info });
  }

  async *list(): AsyncIterable<ObjectInfo> {
    for (const key of [...this.objects.keys()].sort()) {
      this.listedCount++;
      yield (this.objects.get(key) as { info: ObjectInfo }).info;
    }
  }

  async head(key: string): Promise<ObjectInfo> {
    const o = this.objects.get(key);
    if (!o) throw new StoreError(`no object ${key} in ${this.url}`, 'not-found', `${this.url}/${key}`);
    return o.info;
  }

  async open(key: string): Promise<Readable> {
    const o = this.objects.get(key);
    if (!o) throw new StoreError(`no object ${key} in ${this.url}`, 'not-found', `${this.url}/${key}`);
    return Readable.from([o.body]);
  }
}

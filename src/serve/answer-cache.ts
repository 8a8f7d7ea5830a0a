/**
 * Answers kept as the bytes sent, least recently used dropped first once they hold more than
 * `maxBytes`. For answers that never change: `/api/sources` of a finished crawl (a crawl's
 * records are final once it is `done`), where a large closure's answer costs a recursive
 * query and a few hundred kB of JSON each time.
 */
export interface AnswerCache {
  get(key: string): Buffer | undefined;
  set(key: string, body: Buffer): void;
  readonly bytes: number;
}

export function createAnswerCache(maxBytes: number): AnswerCache {
  const entries = new Map<string, Buffer>();
  let bytes = 0;
  return {
    get(key) {
      const body = entries.get(key);
      if (body === undefined) return undefined;
      // a Map iterates in insertion order: the first entry is the least recently used
      entries.delete(key);
      entries.set(key, body);
      return body;
    },
    set(key, body) {
      if (body.length > maxBytes) return;
      const old = entries.get(key);
      if (old !== undefined) bytes -= old.length;
      entries.delete(key);
      entries.set(key, body);
      bytes += body.length;
      for (const [k, b] of entries) {
        if (bytes <= maxBytes) break;
        entries.delete(k);
        bytes -= b.length;
      }
    },
    get bytes() {
      return bytes;
    },
  };
}

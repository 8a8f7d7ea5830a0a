/** Thread entry point of the download hashers: one file's digests (see src/mirror/hash-task.ts). */
export { hashTrailing as default } from '../src/mirror/hash-task.js';

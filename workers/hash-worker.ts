/** Thread entry point of the hashers: one file's digests, or one file copied and hashed (see src/mirror/hash-task.ts). */
export { hashTrailing as default, copyHashed } from '../src/mirror/hash-task.js';

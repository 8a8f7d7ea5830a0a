/** Thread entry point of the hashers: one file's digests, one file copied and hashed, or narinfo signatures checked (see src/mirror/hash-task.ts). */
export { hashTrailing as default, copyHashed, verifySigs } from '../src/mirror/hash-task.js';

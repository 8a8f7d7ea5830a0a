/** Thread entry point of the NAR hash of a tree walked on the calling thread (see src/mirror/nar-hash-task.ts). */
export { hashChunks as default } from '../src/mirror/nar-hash-task.js';

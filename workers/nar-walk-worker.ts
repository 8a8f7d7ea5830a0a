/** Thread entry point of the parallel NAR hash's walkers (see src/mirror/nar-walk-task.ts). */
export { walkUnits as default } from '../src/mirror/nar-walk-task.js';

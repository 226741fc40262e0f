/**
 * Imported first by src/main.ts: validates the settings and the policy (and builds the deps) before
 * any function registers, so a wrong setting stops start-up with a message that names it.
 */
import { getDeps } from './lib/app/deps';

getDeps();

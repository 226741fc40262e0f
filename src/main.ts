/**
 * The app's entry point (bundled to dist/main.js). Validates the settings and the policy first, so
 * a wrong setting stops start-up with a message naming it, then registers every function.
 */
import { getDeps } from './lib/app/deps';

getDeps();

require('./functions/keyVaultEvents');
require('./functions/health');
require('./functions/audit');
require('./functions/alerts');

/**
 * The app's entry point (bundled to dist/main.js): validates the configuration first (startup),
 * then registers every function. Imports are evaluated in this order.
 */
import './startup';
import './functions/keyVaultEvents';
import './functions/health';
import './functions/audit';
import './functions/alerts';
import './functions/runs';
import './functions/runEndpoints';
import './functions/rotations';
import './functions/remediation';
import './functions/secretSweep';
import './functions/stateRetention';
import './functions/deadLetterArrivals';
import './functions/deadLetters';
import './functions/deadLetterReport';
import './functions/checks';
import './functions/gates';

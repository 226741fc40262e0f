/**
 * The app's own runtime as Azure Functions supports it: the data the platformVersions check compares
 * the running Node and host.json's extension bundle with, since no API answers it and Dependabot does
 * not watch it. Update by hand from the sources, then set `checkedOn`; the check reports this data as
 * stale once `checkedOn` is older than `checks.platformVersions.runtime.maxDataAgeDays`.
 * `endOfSupport: null`: none announced. A module rather than a JSON file: every build of the app
 * (bundled or not) carries it like any other source.
 */
export const RUNTIME_SUPPORT_DATA = {
  checkedOn: '2026-11-30',
  sources: [
    'https://learn.microsoft.com/azure/azure-functions/language-support-policy',
    'https://learn.microsoft.com/azure/azure-functions/functions-versions?pivots=programming-language-javascript#languages',
    'https://learn.microsoft.com/azure/azure-functions/extension-bundles#supported-extension-bundles',
    'https://github.com/nodejs/release#release-schedule',
  ],
  node: [
    { major: 18, endOfSupport: '2025-04-30' },
    { major: 20, endOfSupport: '2026-04-30' },
    { major: 22, endOfSupport: '2027-04-30' },
  ],
  extensionBundle: [
    { major: 1, endOfSupport: '2026-05-30' },
    { major: 2, endOfSupport: '2026-05-30' },
    { major: 3, endOfSupport: '2026-05-30' },
    { major: 4, endOfSupport: null },
  ],
};

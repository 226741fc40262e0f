import type { SecretProperties } from '../ports/secrets';

/** What a secret's version listing says about which version is current. */
export interface CurrentVersion {
  /**
   * The versions that may be the current one: those created in the latest second of the listing.
   * Key Vault's current version is the one created last, but it lists versions in version-id order
   * (not creation order) and `created` has one-second resolution, so two versions created within
   * the same second cannot be told apart: each of them may be current.
   */
  candidates: SecretProperties[];
  /** More than one candidate: callers act for each rather than guess (a duplicate notice is cheap). */
  ambiguous: boolean;
}

/**
 * Works out the current version from a version listing (any order). Versions without a creation
 * time sort first (oldest); an empty listing has no candidates.
 */
export function currentVersionOf(versions: readonly SecretProperties[]): CurrentVersion {
  let latestSecond = Number.NEGATIVE_INFINITY;
  let candidates: SecretProperties[] = [];
  for (const version of versions) {
    const created = version.createdOn?.getTime();
    const second = created === undefined || Number.isNaN(created) ? -1 : Math.floor(created / 1000);
    if (second > latestSecond) {
      latestSecond = second;
      candidates = [version];
    } else if (second === latestSecond) {
      candidates.push(version);
    }
  }
  return { candidates, ambiguous: candidates.length > 1 };
}

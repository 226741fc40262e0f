/**
 * An adapter built (and its SDK loaded) on first use, shared by every later call; a failed build is
 * tried again on the next call instead of being remembered. Importing the app then loads no SDK.
 */
export function lazy<T>(build: () => Promise<T>): () => Promise<T> {
  let instance: Promise<T> | undefined;
  return () => {
    instance ??= build().catch((error: unknown) => {
      instance = undefined;
      throw error;
    });
    return instance;
  };
}

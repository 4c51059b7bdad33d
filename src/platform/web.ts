// Shared by both platforms (index.ts and browser.ts).

/** A folder named by a URL path relative to the page's base URL (document.baseURI) or, in a
 *  worker, to the worker script's URL; as a URL ending in "/". */
export function webFolderUrl(path: string): URL {
  const g = globalThis as any;
  const base: string | undefined = g.document?.baseURI ?? g.location?.href;
  if (!base) throw new TypeError(`simdnet: the relative path ${JSON.stringify(path)} cannot be resolved here (no document or location): give a full URL`);
  return new URL(path.endsWith("/") ? path : path + "/", base);
}

/** If-None-Match (RFC 9110 §13.1.2) against a static asset's tag: `*`, or a list of tags compared weakly (`W/"x"` matches `"x"`). */
export function etagMatches(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  if (header.trim() === '*') return true;
  const strip = (t: string) => t.trim().replace(/^W\//, '');
  const want = strip(etag);
  return header.split(',').some((t) => strip(t) === want);
}

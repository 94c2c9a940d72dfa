/**
 * Static browser files the HTTP layer serves: the widget, its PoW worker, FingerprintJS and the demo page.
 *
 * FingerprintJS is read from node_modules at startup rather than copied into web/vendor, so the served
 * copy always matches the installed, lockfile-pinned version and nothing third-party is committed. We
 * serve its UMD build because the widget loads it as a classic <script> (no CORS needed when the widget
 * runs on a customer's origin; a module import would need CORS headers on /fp.js).
 *
 * Everything is loaded once into memory (a few hundred KB) with a strong ETag, so serving is a map lookup.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface WebAsset {
  body: Buffer;
  /** Content-Type header value. */
  type: string;
  /** Strong ETag (quoted), for If-None-Match. */
  etag: string;
}

const JS = 'text/javascript; charset=utf-8';
const HTML = 'text/html; charset=utf-8';
const CSS = 'text/css; charset=utf-8';

/** URL path → file under web/. `/demo` is the demo page itself. */
const WEB_FILES: ReadonlyArray<readonly [path: string, file: string, type: string]> = [
  ['/widget.js', 'widget.js', JS],
  ['/widget-worker.js', 'widget-worker.js', JS],
  ['/demo', 'demo.html', HTML],
  ['/demo.js', 'demo.js', JS],
  ['/demo.css', 'demo.css', CSS],
];

/** Module specifier of the FingerprintJS build served at /fp.js. */
export const FINGERPRINTJS_BUILD = '@fingerprintjs/fingerprintjs/dist/fp.umd.min.js';

/** Default web/ directory: two levels up from this file both in src/signals and in dist/signals. */
export function defaultWebDir(): string {
  return fileURLToPath(new URL('../../web/', import.meta.url));
}

function asset(body: Buffer, type: string): WebAsset {
  return { body, type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"` };
}

/**
 * Reads all browser assets. Throws when a file is missing: better to fail at startup than to serve a
 * page whose widget 404s.
 */
export async function loadWebAssets(opts: { webDir?: string } = {}): Promise<Map<string, WebAsset>> {
  const dir = opts.webDir ?? defaultWebDir();
  const out = new Map<string, WebAsset>();
  await Promise.all(
    WEB_FILES.map(async ([path, file, type]) => {
      out.set(path, asset(await readFile(join(dir, file)), type));
    }),
  );
  const require = createRequire(import.meta.url);
  out.set('/fp.js', asset(await readFile(require.resolve(FINGERPRINTJS_BUILD)), JS));
  return out;
}

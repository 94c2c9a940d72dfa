/**
 * What a key without the `admin` scope sees of personal data (docs/security.md, "API key scopes"): numbers and
 * email addresses masked, wherever a read route hands them out — events, list entries, pauses, alerts. A diff
 * review found the first version masking events and lists only: a pause on a whole number, its note, and an
 * alert's data came back in full to a `read` key.
 */
import { grants } from './api-keys.ts';
import { maskDeep, maskedPrefix, numberMasker } from './audit-export.ts';
import type { ApiKeyRecord } from '../store/interface.ts';

export const READ_MASK = numberMasker('mask');

/** Whether the request's key may see personal data in full (an admin key). */
export function seesInFull(key: Pick<ApiKeyRecord, 'scopes'> | null | undefined): boolean {
  return !!key && grants(key.scopes, 'admin');
}

/** A pause or quarantine scope (`prefix:+62812…`) with a prefix as long as a number masked like one. */
export function maskedScope(scope: string): string {
  return scope.startsWith('prefix:') ? `prefix:${maskedPrefix(scope.slice(7), READ_MASK)}` : scope;
}

/** Numbers and addresses anywhere inside `v` (strings, and numbers quoted inside texts), masked. */
export function maskedForRead<T>(v: T): T {
  return maskDeep(v, READ_MASK) as T;
}

/**
 * Random ids of verifications and audit events, in a module of its own so that the CLI's list and key commands
 * can name their events without loading the verification service.
 */
import { randomBytes } from 'node:crypto';

/**
 * `bytes` random bytes as base64url, cut from a pooled `randomBytes` buffer (one CSPRNG call per 4 KiB
 * instead of one per id; every byte is used once, so ids stay unique and unguessable).
 */
let idPool: Buffer = Buffer.alloc(0);
let idPos = 0;
export function pooledRandom(bytes: number): string {
  if (idPos + bytes > idPool.length) {
    idPool = randomBytes(4096);
    idPos = 0;
  }
  const s = idPool.toString('base64url', idPos, idPos + bytes);
  idPos += bytes;
  return s;
}

/** Event ids: 96 random bits. */
export function eventId(): string {
  return `ev_${pooledRandom(12)}`;
}

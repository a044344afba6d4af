// A locked room's key exchange in the browser: the twin of engine/src/lock/cpace.rs (CPace
// on ristretto255), checked against the same test vectors (tests/scenarios/cpace-vectors.json).
// The group arithmetic is the audited noble library, vendored; stretching and HMAC are the
// browser's own WebCrypto. A page cannot see the host certificate its browser accepted, so
// its exchanges are unbound (the binding is empty); see PROTOCOL.md, "Locked rooms".

import { ristretto255, ristretto255_hasher, sha512 } from './vendor/noble-ristretto255.js';

const enc = new TextEncoder();
const DSI = enc.encode('lanchat-cpace-v1');
const CONFIRM = enc.encode('lanchat-cpace-v1 confirm');
/** The order of the ristretto255 group. */
const ORDER = 2n ** 252n + 27742317777372353535851937790883648493n;
const ROUNDS = 100000;

export function fromHex(hex) {
  if (typeof hex !== 'string' || hex.length % 2 || /[^0-9a-f]/i.test(hex)) {
    throw new Error('not hex');
  }
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i += 1) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export function toHex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

function concat(parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Each part preceded by its length as 4 bytes, big-endian. */
function lengthPrefixed(parts) {
  return concat(
    parts.flatMap((p) => {
      const len = new Uint8Array(4);
      new DataView(len.buffer).setUint32(0, p.length);
      return [len, p];
    }),
  );
}

function stripNewline(passphrase) {
  let p = passphrase;
  if (p.endsWith('\n')) p = p.slice(0, -1);
  if (p.endsWith('\r')) p = p.slice(0, -1);
  return p;
}

/** PBKDF2-HMAC-SHA256 over "lanchat-room-v2\0" || salt, 100,000 rounds: the room key. */
export async function roomKey(passphrase, salt) {
  const p = stripNewline(passphrase);
  if (!p) throw new Error('the passphrase is empty');
  if (!globalThis.crypto?.subtle) throw new Error('this page is not on https: it cannot join locked rooms');
  const material = await crypto.subtle.importKey('raw', enc.encode(p), 'PBKDF2', false, [
    'deriveBits',
  ]);
  const bits = await crypto.subtle.deriveBits(
    {
      name: 'PBKDF2',
      hash: 'SHA-256',
      salt: concat([enc.encode('lanchat-room-v2\u0000'), salt]),
      iterations: ROUNDS,
    },
    material,
    256,
  );
  return new Uint8Array(bits);
}

export function generator(key, ctx) {
  const digest = sha512(
    lengthPrefixed([DSI, key, ctx.binding, enc.encode(ctx.nonce), enc.encode(ctx.room)]),
  );
  return ristretto255_hasher.deriveToCurve(digest);
}

/** 64 bytes, little-endian, reduced modulo the group order. */
function scalarFromSeed(seed) {
  let n = 0n;
  for (let i = seed.length - 1; i >= 0; i -= 1) n = (n << 8n) | BigInt(seed[i]);
  return n % ORDER;
}

function transcript(ctx, client, host) {
  return lengthPrefixed([
    DSI,
    ctx.binding,
    enc.encode(ctx.nonce),
    enc.encode(ctx.room),
    client,
    host,
  ]);
}

async function hmac(key, role, data) {
  const k = await crypto.subtle.importKey('raw', key, { name: 'HMAC', hash: 'SHA-256' }, false, [
    'sign',
  ]);
  return new Uint8Array(await crypto.subtle.sign('HMAC', k, concat([enc.encode(role), data])));
}

/**
 * The client's side, given the host's challenge: {share, tag, hostTag} as bytes. `seed`:
 * 64 random bytes (fixed only in tests). Throws if the host's share is not a valid point.
 */
export async function answer(key, ctx, hostShare, seed) {
  const g = generator(key, ctx);
  const scalar = scalarFromSeed(seed);
  const share = g.multiply(scalar).toBytes();
  const other = ristretto255.Point.fromBytes(hostShare);
  const secret = other.multiply(scalar);
  if (secret.equals(ristretto255.Point.ZERO)) throw new Error('the host share is not usable');
  const t = transcript(ctx, share, hostShare);
  const confirm = sha512(concat([lengthPrefixed([CONFIRM, secret.toBytes()]), t])).slice(0, 32);
  return {
    share,
    tag: await hmac(confirm, 'client', t),
    hostTag: await hmac(confirm, 'host', t),
  };
}

/** The room name as the host compares names (protocol::name_key): NFKC, lower case, NFKC. */
export function nameKey(name) {
  return name.trim().normalize('NFKC').toLowerCase().normalize('NFKC');
}

/** Fresh randomness for a share. */
export function randomSeed() {
  const seed = new Uint8Array(64);
  crypto.getRandomValues(seed);
  return seed;
}

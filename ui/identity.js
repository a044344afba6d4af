// The page's own key, so the host knows a browser by its key rather than by the nickname it
// types (the app and the CLI present their installation's TLS certificate instead). ECDSA
// P-256, made once and kept in IndexedDB; its private half is non-extractable, so not even
// this page's scripts can read it out, only sign with it. Browsers keep storage per origin
// (address and port), so a host on a new port meets a new key.

const DB = 'lanchat';
const STORE = 'keys';
const NAME = 'identity';

function request(r) {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

function generate() {
  return crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, [
    'sign',
    'verify',
  ]);
}

let cached = null;

/** The page's key pair: the stored one, or a new one (stored if the browser lets us). */
export function pageKey() {
  cached ??= (async () => {
    try {
      const open = indexedDB.open(DB, 1);
      open.onupgradeneeded = () => open.result.createObjectStore(STORE);
      const db = await request(open);
      const stored = await request(db.transaction(STORE).objectStore(STORE).get(NAME));
      if (stored) return stored;
      const pair = await generate();
      await request(db.transaction(STORE, 'readwrite').objectStore(STORE).put(pair, NAME));
      return pair;
    } catch {
      return generate(); // storage refused (private window): a key for this visit only
    }
  })();
  return cached;
}

const hex = (buf) => Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, '0')).join('');

/** The `identify` frame's fields: the public key and a signature over the hello's nonce. */
export async function identify(nonce) {
  const pair = await pageKey();
  const data = new TextEncoder().encode(`lanchat-identity-v1\u0000${nonce}`);
  const sig = await crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, pair.privateKey, data);
  const key = await crypto.subtle.exportKey('raw', pair.publicKey);
  return { key: hex(key), sig: hex(sig) };
}

// The locked-room key exchange's test vectors (tests/scenarios/cpace-vectors.json) in a real
// browser (Debian's chromium): the page's own ui/cpace.js, as the host serves it, with the
// browser's WebCrypto and the vendored noble library, reproduces every value.
//
//   node cpace-vectors.mjs URL     (URL: a LAN Chat host's https page)
//
// Prints "N vectors, every value reproduced in chromium"; exits non-zero on a difference.
import { readFileSync } from 'node:fs';
import { launchChromium } from './launch.mjs';

const [url] = process.argv.slice(2);
const doc = JSON.parse(readFileSync(new URL('../scenarios/cpace-vectors.json', import.meta.url)));
const browser = await launchChromium();
try {
  const page = await browser.newPage();
  await page.goto(url);
  const results = await page.evaluate(async (vectors) => {
    const c = await import('/cpace.js');
    const out = [];
    for (const v of vectors) {
      const key = await c.roomKey(v.passphrase, c.fromHex(v.salt));
      const ctx = { binding: c.fromHex(v.binding), nonce: v.nonce, room: c.nameKey(v.room) };
      const answer = await c.answer(key, ctx, c.fromHex(v.host_share), c.fromHex(v.client_seed));
      out.push({
        room_key: c.toHex(key),
        generator: c.toHex(c.generator(key, ctx).toBytes()),
        client_share: c.toHex(answer.share),
        client_tag: c.toHex(answer.tag),
        host_tag: c.toHex(answer.hostTag),
      });
    }
    return out;
  }, doc.vectors);
  const wrong = [];
  results.forEach((got, i) => {
    for (const [field, value] of Object.entries(got)) {
      if (doc.vectors[i][field] !== value) wrong.push(`vector ${i} ${field}: ${value}`);
    }
  });
  if (wrong.length) throw new Error(wrong.join('\n'));
  console.log(`${results.length} vectors, every value reproduced in chromium`);
} finally {
  await browser.close();
}

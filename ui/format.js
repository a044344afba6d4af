// A message's text as DOM nodes, with a small safe subset of formatting: ```code blocks```,
// `inline code`, **bold**, *italic* or _italic_, http(s) links and @mentions. Built with
// createElement and text nodes only: no HTML is ever parsed, so nothing a message says can
// become markup.

const TIME = new Intl.DateTimeFormat([], { hour: '2-digit', minute: '2-digit' });

/** A date as this computer writes it. */
export const DATE = new Intl.DateTimeFormat([], { year: 'numeric', month: 'numeric', day: 'numeric' });

/** A time of day, as this computer writes it. */
export function clock(ts) {
  return TIME.format(ts);
}

const INLINE = new RegExp(
  [
    '(`[^`\\n]+`)', // inline code
    '(\\*\\*[^*\\n]+\\*\\*)', // bold
    '(?<![\\p{L}\\p{N}*])(\\*[^*\\s](?:[^*\\n]*[^*\\s])?\\*)(?![\\p{L}\\p{N}*])', // *italic*
    '(?<![\\p{L}\\p{N}_])(_[^_\\s](?:[^_\\n]*[^_\\s])?_)(?![\\p{L}\\p{N}_])', // _italic_
    '(https?:\\/\\/[^\\s<>"]+)', // a link
    '(?<![\\p{L}\\p{N}_])(@[\\p{L}\\p{N}_.-]*[\\p{L}\\p{N}_])', // @mention
  ].join('|'),
  'giu',
);

/** A link's end without the punctuation that usually follows it in a sentence. */
function trimLink(url) {
  let end = url.length;
  while (end > 0 && '.,;:!?\'"'.includes(url[end - 1])) end -= 1;
  // A closing parenthesis belongs to the link only if it opened one.
  while (url[end - 1] === ')' && (url.slice(0, end).match(/\(/g) || []).length <
      (url.slice(0, end).match(/\)/g) || []).length) {
    end -= 1;
  }
  return url.slice(0, end);
}

function inline(text, out, me) {
  let at = 0;
  for (const m of text.matchAll(INLINE)) {
    let token = m[0];
    if (m[5]) token = trimLink(token);
    if (m.index > at) out.append(text.slice(at, m.index));
    at = m.index + token.length;
    let node;
    if (m[1]) {
      node = document.createElement('code');
      node.textContent = token.slice(1, -1);
    } else if (m[2]) {
      node = document.createElement('strong');
      node.textContent = token.slice(2, -2);
    } else if (m[3] || m[4]) {
      node = document.createElement('em');
      node.textContent = token.slice(1, -1);
    } else if (m[5]) {
      node = document.createElement('a');
      node.href = token;
      node.textContent = token;
      node.dataset.external = '';
      node.target = '_blank';
      node.rel = 'noopener noreferrer';
    } else {
      node = document.createElement('span');
      node.className = 'mention';
      node.textContent = token;
      if (me && token.slice(1).toLowerCase() === me.toLowerCase()) node.classList.add('me');
    }
    out.append(node);
  }
  if (at < text.length) out.append(text.slice(at));
}

/** Whether `text` has nothing to format (most messages): it is shown as it is. */
export function isPlain(text) {
  return !/[`*_@:]/.test(text);
}

/**
 * Whether `text` may be taller than a message should be (long, many lines, or a pile of
 * combining marks): such a text gets its own scrolling box. Only those: a scrolling box per
 * message made every frame of a busy room lay out and paint 500 of them.
 */
export function isTall(text) {
  return text.length > 500 || text.split('\n', 13).length > 12 || /\p{M}{3}/u.test(text);
}

/** The nodes of `text`; `me`: the reader's nickname, whose mentions stand out. */
export function formatText(text, me) {
  const out = document.createDocumentFragment();
  // Most messages have nothing to format: no pattern to run.
  if (isPlain(text)) {
    out.append(text);
    return out;
  }
  const parts = text.split(/```/);
  // Odd parts were between fences (an unclosed fence is just text).
  const closed = parts.length % 2 === 1;
  parts.forEach((part, i) => {
    const isCode = i % 2 === 1 && (closed || i < parts.length - 1);
    if (isCode) {
      const pre = document.createElement('pre');
      const code = document.createElement('code');
      // A language name on the fence's line is not part of the code.
      code.textContent = part.replace(/^[\w+-]*\n/, '').replace(/\n$/, '');
      pre.append(code);
      out.append(pre);
    } else {
      inline(i % 2 === 1 ? `\`\`\`${part}` : part, out, me);
    }
  });
  return out;
}

/** Whether `text` mentions `nick` (@nick, any case). */
export function mentions(text, nick) {
  if (!nick || !text.includes('@')) return false;
  const lower = nick.toLowerCase();
  for (const m of text.matchAll(INLINE)) {
    if (m[6] && m[6].slice(1).toLowerCase() === lower) return true;
  }
  return false;
}

// Small DOM helpers shared by the modules that draw the page (view.js, desktop-view.js).

export const $ = (id) => document.getElementById(id);

/** A new element; `text` (peer text included) goes in as text, never as HTML. */
export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** Puts `text` on the clipboard: the async API where the page may use it, else a selection. */
export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const area = el('textarea');
    area.value = text;
    area.setAttribute('readonly', '');
    area.style.position = 'fixed';
    area.style.opacity = '0';
    document.body.append(area);
    area.select();
    const done = document.execCommand('copy');
    area.remove();
    return done;
  }
}

/** A "Copy" button for `text`, saying "Copied" for a moment once it did. */
export function copyButton(text, what) {
  const button = el('button', 'ghost small copy', 'Copy');
  button.type = 'button';
  button.setAttribute('aria-label', `Copy ${what}`);
  button.addEventListener('click', async () => {
    const done = await copyText(text);
    button.textContent = done ? 'Copied' : 'Copy failed';
    button.dataset.copied = String(done);
    setTimeout(() => {
      button.textContent = 'Copy';
      delete button.dataset.copied;
    }, 1500);
  });
  return button;
}

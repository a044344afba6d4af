// The View's file cards (a shared file: thumbnail, name, size, Save) and transfers in
// progress (bar, speed, time left, Cancel); mixed into View (view.js).

import { el } from './dom.js';
import { clock } from './format.js';

/** "1.4 MB": a size for people. */
export function humanSize(bytes) {
  if (bytes < 1000) return `${Math.round(bytes)} bytes`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = -1;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return `${value < 10 ? value.toFixed(1) : Math.round(value)} ${units[unit]}`;
}

export const fileViews = {
  /**
   * A shared file's card: name, size and type (an image: its thumbnail, which `thumb()`
   * resolves to a URL), and a Save button that calls `onSave(setState)`.
   */
  fileCard(args) {
    return this.append(this.fileEntry(args)).node;
  },

  fileEntry({ ev, own, thumb, full, onSave, onShow }) {
    const item = el('li', `message file ${own ? 'own' : 'other'}${ev.to ? ' private' : ''}`);
    item.dataset.file = ev.id;
    const meta = el('p', 'meta');
    meta.append(el('span', 'from', own ? 'You' : ev.from));
    if (ev.to) meta.append(el('span', 'badge', own ? `private to ${ev.to}` : 'private'));
    const time = el('time', 'time', clock(ev.ts));
    time.dateTime = new Date(ev.ts).toISOString();
    meta.append(time);
    const card = el('div', 'file-card');
    if (ev.image) {
      const img = el('img', 'thumb');
      img.alt = ev.name;
      img.width = Math.min(240, ev.image.width);
      img.height = Math.round((img.width * ev.image.height) / Math.max(1, ev.image.width));
      thumb().then(
        (url) => { img.src = url; },
        () => img.replaceWith(el('p', 'hint', 'No preview: the host no longer has this image')),
      );
      img.title = 'Show full size';
      img.addEventListener('click', () => this.showImage(ev.name, full));
      card.append(img);
    }
    const line = el('p', 'file-line');
    line.append(el('span', 'file-name', ev.name));
    line.append(el('span', 'file-size', `${humanSize(ev.size)} · ${ev.mime}`));
    const save = el('button', 'ghost small', 'Save');
    save.type = 'button';
    const status = el('span', 'file-status');
    save.addEventListener('click', () => {
      save.disabled = true;
      onSave((text, done, path) => {
        status.textContent = text;
        if (done) save.disabled = false;
        if (path && onShow) {
          const show = el('button', 'ghost small', 'Show in folder');
          show.type = 'button';
          show.addEventListener('click', () => onShow(path));
          status.append(' ', show);
        }
      });
    });
    line.append(save, status);
    card.append(line);
    item.append(meta, card);
    return { node: item, seq: ev.seq ?? null, ts: ev.ts, from: own ? null : ev.from, own };
  },

  /** An image at full size, over the conversation; `url()` resolves to its address. */
  showImage(name, url) {
    if (!this.imageDialog) {
      this.imageDialog = el('dialog', 'image-dialog');
      this.imageDialog.addEventListener('click', () => this.imageDialog.close());
      document.body.append(this.imageDialog);
    }
    const dialog = this.imageDialog;
    dialog.replaceChildren(el('p', 'hint', `Loading ${name}…`));
    dialog.showModal();
    url().then(
      (src) => {
        const img = el('img');
        img.alt = name;
        img.src = src;
        dialog.replaceChildren(img, el('p', 'hint', `${name} · click to close`));
      },
      (e) => dialog.replaceChildren(el('p', 'error', `Cannot show ${name}: ${e?.message || e}`)),
    );
  },

  /**
   * A transfer of ours in progress: a bar with speed and time left, and Cancel.
   * `verb`: "Sending" or "Saving".
   */
  transfer(name, verb, onCancel) {
    const item = el('li', 'system transfer');
    const label = el('span', null, `${verb} ${name}…`);
    // Indeterminate (while the file is read to hash it) until the first report.
    const bar = el('progress');
    const detail = el('span', 'hint');
    const cancel = el('button', 'ghost small', 'Cancel');
    cancel.type = 'button';
    cancel.addEventListener('click', () => {
      cancel.disabled = true;
      onCancel();
    });
    item.append(label, bar, detail, cancel);
    const entry = this.append({ node: item, seq: null, ts: Date.now(), from: null, own: true });
    const conversation = this.conversation;
    // Speed counts from the first report (reading the file to hash it comes before).
    let first = null;
    return {
      progress(done, total) {
        bar.max = Math.max(1, total);
        bar.value = done;
        const now = performance.now();
        first ??= { at: now, done };
        const seconds = (now - first.at) / 1000;
        const rate = seconds > 0.1 ? (done - first.done) / seconds : 0;
        const left = rate > 0 ? Math.ceil((total - done) / rate) : null;
        const percent = Math.floor((done * 100) / Math.max(1, total));
        const speed = rate > 0 ? ` · ${humanSize(rate)}/s` : '';
        detail.textContent = `${percent}%${speed}${left !== null ? ` · ${left} s left` : ''}`;
      },
      end(text) {
        conversation.remove(entry);
        if (text) label.textContent = text;
      },
      fail(text) {
        label.textContent = text;
        bar.remove();
        cancel.remove();
        detail.textContent = '';
        item.classList.add('failed');
      },
    };
  },
};

// The View's search panel (Ctrl+F): words, or the start of words, optionally from one
// person; results newest first, each opening the conversation around it. Mixed into View.

import { $, el } from './dom.js';
import { clock, DATE } from './format.js';

/** `text` with the search's words marked (text nodes and <mark> only). */
function highlight(text, terms) {
  const out = document.createDocumentFragment();
  const short = text.length > 300 ? `${text.slice(0, 300)}…` : text;
  const lower = short.toLowerCase();
  let at = 0;
  while (at < short.length) {
    let next = -1;
    let len = 0;
    for (const t of terms) {
      const i = lower.indexOf(t, at);
      if (i >= 0 && (next < 0 || i < next)) {
        next = i;
        len = t.length;
      }
    }
    if (next < 0) break;
    out.append(short.slice(at, next), el('mark', null, short.slice(next, next + len)));
    at = next + len;
  }
  out.append(short.slice(at));
  return out;
}

export const searchViews = {

  searchSetup() {
    this.searchPanel = $('search-panel');
    this.searchInput = $('search-input');
    this.searchFrom = $('search-from');
    this.searchStatus = $('search-status');
    this.searchResultsList = $('search-results');
    this.searchMore = $('search-more');
    $('search-button').addEventListener('click', () => this.openSearch());
    $('search-close').addEventListener('click', () => this.closeSearch());
    document.addEventListener('keydown', (e) => {
      if (this.screens.chat.hidden) return;
      if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === 'f') {
        e.preventDefault();
        this.openSearch();
      } else if (e.key === 'Escape' && !this.searchPanel.hidden) {
        this.closeSearch();
      }
    });
  },

  openSearch() {
    this.searchPanel.hidden = false;
    this.searchInput.focus();
    this.searchInput.select();
  },

  closeSearch() {
    this.searchPanel.hidden = true;
    this.searchResultsList.replaceChildren();
    this.searchStatus.textContent = '';
    this.searchMore.hidden = true;
  },

  /** `handler(words, from)` when a search is asked for; `more()` for older results. */
  onSearch(handler, more) {
    $('search-form').addEventListener('submit', (e) => {
      e.preventDefault();
      const words = this.searchInput.value.trim();
      if (!words) return;
      this.searchResultsList.replaceChildren();
      this.searchStatus.textContent = 'Searching…';
      handler(words, this.searchFrom.value.trim() || null);
    });
    this.searchMore.addEventListener('click', () => more());
  },

  /** Search results (newest first), each a button that calls `onPick(event)`. */
  searchResults({ words, hits, more, error, onPick }) {
    if (error) {
      this.searchStatus.textContent = `Cannot search: ${error}`;
      return;
    }
    const shown = this.searchResultsList.children.length + hits.length;
    this.searchStatus.textContent = shown === 0
      ? `Nothing found for “${words}”.`
      : `${shown}${more ? '+' : ''} ${shown === 1 ? 'result' : 'results'} for “${words}”, newest first.`;
    const terms = words.toLowerCase().split(/[^\p{L}\p{N}]+/u).filter(Boolean);
    for (const ev of hits) {
      const item = el('li');
      const pick = el('button', 'search-hit');
      pick.type = 'button';
      pick.append(el('strong', null, ev.from || ''), ' ',
        el('span', 'muted', `${DATE.format(ev.ts)} ${clock(ev.ts)}`), el('br'));
      pick.append(highlight(ev.text ?? ev.name ?? '', terms));
      pick.addEventListener('click', () => onPick(ev));
      item.append(pick);
      this.searchResultsList.append(item);
    }
    this.searchMore.hidden = !more;
  },
};

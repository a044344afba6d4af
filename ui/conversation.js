// The conversation list: a bounded window of the room's messages in the DOM, however long the
// room and however fast it goes. DOM only; the wiring (app.js) gives it entries and says where
// older and newer pages come from.
//
// - New entries are queued and put in the page once per animation frame (or every 100 ms when
//   the window is hidden and frames stop): one layout per frame, not one per message.
// - At most MAX_SHOWN entries are in the DOM. Following the conversation, the oldest leave the
//   top; scrolled up to the top, the page before is fetched from the host and the bottom
//   leaves; coming back down, newer ones come back (from memory, or from the host).
// - While the reader is scrolled up, new messages are counted ("New messages (N) ↓"), not
//   pushed under them.
// - Date separators between days, consecutive messages of one person grouped, and a marker
//   where unread messages start.
//
// An entry: {node, seq (null for local lines), ts, from (null for lines from the room), own,
// release() (optional: the node may go, `node` makes it again when next shown)}.

/** Entries in the DOM at most. */
export const MAX_SHOWN = 500;
/** Recent entries kept in memory (the live end of the conversation). */
const MAX_TAIL = 1000;
/** How close to an end of the list (px) a scroll fetches more. */
const NEAR = 300;
/** How long a list shown again keeps following the newest whatever it measures. */
const SHOWN_SETTLE_MS = 500;
/** Entries of one person closer than this (ms) are grouped under one name. */
const GROUP_MS = 5 * 60 * 1000;

function day(ts) {
  const d = new Date(ts);
  return `${d.getFullYear()}-${d.getMonth()}-${d.getDate()}`;
}

/** One formatter for every separator (a new one per call is a large ICU object). */
const DAY = new Intl.DateTimeFormat([], { weekday: 'long', year: 'numeric', month: 'long', day: 'numeric' });

function dayLabel(ts) {
  const d = new Date(ts);
  const today = new Date();
  const yesterday = new Date(today.getTime() - 86400000);
  if (day(ts) === day(today.getTime())) return 'Today';
  if (day(ts) === day(yesterday.getTime())) return 'Yesterday';
  return DAY.format(d);
}

function separator(className, text) {
  const li = document.createElement('li');
  li.className = className;
  li.setAttribute('role', 'separator');
  const span = document.createElement('span');
  span.textContent = text;
  li.append(span);
  return li;
}

export class Conversation {
  /**
   * list: the <ol>; jump: the "New messages" button. pages.older(seq) / pages.newer(seq)
   * resolve to {entries, more} (entries in order) for the events before / after `seq`.
   */
  constructor(list, jump, pages) {
    this.list = list;
    this.jump = jump;
    this.pages = pages;
    this.reset();
    list.addEventListener('scroll', () => this.scrolled());
    jump.addEventListener('click', () => this.goLive());
  }

  reset() {
    this.followUntil = 0;
    this.list.replaceChildren();
    this.followWhenShown ??= true;
    /** The live end: the most recent entries, in order. */
    this.tail = [];
    /** Entries in the DOM, in order. */
    this.shown = [];
    this.queue = [];
    /** The DOM window ends at the live end (new entries go in). */
    this.live = true;
    /** Entries that arrived while the reader was not at the bottom. */
    this.unseen = 0;
    this.olderDone = false;
    this.loading = false;
    this.flushing = null;
    this.unreadFrom = null;
    this.jump.hidden = true;
  }

  /**
   * Another room is shown instead: remember whether the reader was following the newest,
   * which is what "at the bottom" means while the list is not displayed.
   */
  hide() {
    if (this.hidden) return;
    this.followWhenShown = this.atBottom();
    this.hidden = true;
  }

  /** Shown again: still following the newest if it was, else where it was left. */
  show() {
    this.hidden = false;
    if (!this.followWhenShown) return;
    this.scrollToBottom();
    // What arrives while the list is laid out again (its first frames) is followed too: the
    // heights it measures meanwhile can say "not at the bottom" when it is.
    this.followUntil = performance.now() + SHOWN_SETTLE_MS;
  }

  atBottom() {
    // Not displayed: every height is 0; it follows if it did when hidden.
    if (this.hidden) return this.followWhenShown;
    const m = this.list;
    return m.scrollHeight - m.scrollTop - m.clientHeight < 24;
  }

  scrollToBottom() {
    this.list.scrollTop = this.list.scrollHeight;
  }

  /** A new entry at the live end. `own`: the reader's own, which brings the view down. */
  push(entry) {
    this.tail.push(entry);
    if (this.tail.length > MAX_TAIL) this.tail.splice(0, this.tail.length - MAX_TAIL);
    this.queue.push(entry);
    if (entry.own && !this.live) {
      this.goLive();
      return;
    }
    this.schedule();
  }

  schedule() {
    if (this.flushing) return;
    let done = false;
    const run = () => {
      if (done) return;
      done = true;
      this.flushing = null;
      this.flush();
    };
    // Frames stop while the window is hidden; the timer keeps the list current anyway.
    this.flushing = { frame: requestAnimationFrame(run), timer: setTimeout(run, 100) };
  }

  flush() {
    const queued = this.queue.filter((e) => !e.gone);
    this.queue = [];
    if (queued.length === 0) return;
    if (!this.live) {
      this.unseen += queued.filter((e) => e.seq !== null).length;
      this.showJump();
      return;
    }
    const follow = this.atBottom() || queued.some((e) => e.own) || performance.now() < this.followUntil;
    if (!follow) {
      // The reader is looking at something above: the new ones wait below, counted.
      this.live = false;
      this.unseen += queued.filter((e) => e.seq !== null).length;
      this.showJump();
      return;
    }
    // Following along: only the last MAX_SHOWN can be on screen anyway.
    const fresh = queued.slice(-MAX_SHOWN);
    if (fresh.length === MAX_SHOWN) this.clear();
    this.appendEntries(fresh);
    this.trimTop();
    this.scrollToBottom();
  }

  showJump() {
    this.jump.hidden = false;
    this.jump.textContent = this.unseen > 0 ? `New messages (${this.unseen}) ↓` : 'Back to the newest ↓';
  }

  clear() {
    for (const e of this.shown) this.detach(e);
    this.shown = [];
    this.list.replaceChildren();
  }

  detach(entry) {
    // Entries that can rebuild their row give it back for reuse (view.js, OtherMessage).
    if (entry.release) entry.release();
    else entry.node.remove();
    entry.sep?.remove();
    entry.sep = null;
  }

  /** Separator and grouping of `entry` after `before` (null: first in the window). */
  relate(entry, before) {
    entry.sep?.remove();
    entry.sep = null;
    const newDay = entry.ts && (!before || !before.ts || day(before.ts) !== day(entry.ts));
    if (entry === this.unreadFrom) entry.sep = separator('unread-marker', 'New messages');
    else if (newDay) entry.sep = separator('day-separator', dayLabel(entry.ts));
    const grouped =
      !entry.sep && before && entry.from && before.from === entry.from &&
      entry.ts && before.ts && entry.ts - before.ts < GROUP_MS;
    entry.node.classList.toggle('grouped', Boolean(grouped));
  }

  appendEntries(entries) {
    const fragment = document.createDocumentFragment();
    let before = this.shown.at(-1) || null;
    for (const entry of entries) {
      this.relate(entry, before);
      if (entry.sep) fragment.append(entry.sep);
      fragment.append(entry.node);
      this.shown.push(entry);
      before = entry;
    }
    this.list.append(fragment);
  }

  /** Older entries above the window, keeping what the reader sees where it is. */
  prependEntries(entries) {
    if (entries.length === 0) return;
    const height = this.list.scrollHeight;
    const top = this.list.scrollTop;
    const fragment = document.createDocumentFragment();
    let before = null;
    for (const entry of entries) {
      this.relate(entry, before);
      if (entry.sep) fragment.append(entry.sep);
      fragment.append(entry.node);
      before = entry;
    }
    const first = this.shown[0];
    if (first) {
      this.relate(first, before);
      if (first.sep) first.node.before(first.sep);
    }
    this.list.prepend(fragment);
    this.shown = entries.concat(this.shown);
    this.list.scrollTop = top + (this.list.scrollHeight - height);
  }

  trimTop() {
    const extra = this.shown.length - MAX_SHOWN;
    if (extra <= 0) return;
    const follow = this.atBottom();
    const height = this.list.scrollHeight;
    const top = this.list.scrollTop;
    for (const e of this.shown.splice(0, extra)) this.detach(e);
    this.olderDone = false;
    const first = this.shown[0];
    if (first) {
      this.relate(first, null);
      if (first.sep) first.node.before(first.sep);
    }
    if (follow) this.scrollToBottom();
    else this.list.scrollTop = Math.max(0, top - (height - this.list.scrollHeight));
  }

  trimBottom() {
    const extra = this.shown.length - MAX_SHOWN;
    if (extra <= 0) return;
    for (const e of this.shown.splice(this.shown.length - extra, extra)) this.detach(e);
    this.live = false;
    this.showJump();
  }

  scrolled() {
    const m = this.list;
    if (this.loading) return;
    if (m.scrollTop < NEAR && !this.olderDone) this.loadOlder();
    else if (!this.live && m.scrollHeight - m.scrollTop - m.clientHeight < NEAR) this.loadNewer();
    if (this.live && this.atBottom()) {
      this.jump.hidden = true;
      this.unseen = 0;
    }
  }

  firstSeq() {
    return this.shown.find((e) => e.seq !== null)?.seq ?? null;
  }

  lastSeq() {
    return this.shown.findLast((e) => e.seq !== null)?.seq ?? null;
  }

  async loadOlder() {
    const first = this.firstSeq();
    if (first === null) return;
    // What the tail still holds before the window needs no host.
    const at = this.tail.indexOf(this.shown[0]);
    this.loading = true;
    try {
      let entries;
      if (at > 0) {
        entries = this.tail.slice(Math.max(0, at - 100), at);
      } else {
        const page = await this.pages.older(first);
        if (this.firstSeq() !== first) return; // the window changed meanwhile
        entries = page.entries;
        if (!page.more) this.olderDone = true;
      }
      this.prependEntries(entries);
      this.trimBottom();
    } catch (e) {
      console.warn('older messages:', e);
      this.olderDone = true;
    } finally {
      this.loading = false;
    }
  }

  async loadNewer() {
    const lastShown = this.shown.at(-1);
    const last = this.lastSeq();
    this.loading = true;
    try {
      const at = this.tail.indexOf(lastShown);
      let entries;
      if (at >= 0 || this.reachedTail) {
        entries = this.tail.slice(at + 1, at + 1 + 100);
        this.reachedTail = false;
      } else if (last !== null) {
        const tailFirst = this.tail.find((e) => e.seq !== null)?.seq ?? Infinity;
        const page = await this.pages.newer(last);
        if (this.lastSeq() !== last) return;
        entries = page.entries.filter((e) => e.seq === null || e.seq < tailFirst);
        if (entries.length < page.entries.length || !page.more) this.reachedTail = true;
      } else {
        entries = [];
      }
      this.appendEntries(entries);
      this.trimTop();
      if (this.shown.at(-1) === this.tail.at(-1)) {
        this.live = true;
        this.unseen = 0;
        this.jump.hidden = true;
      }
    } catch (e) {
      console.warn('newer messages:', e);
    } finally {
      this.loading = false;
    }
  }

  /** Back to the newest messages, at the bottom. */
  goLive() {
    this.queue = [];
    this.clear();
    this.appendEntries(this.tail.filter((e) => !e.gone).slice(-Math.floor(MAX_SHOWN / 2)));
    this.live = true;
    this.unseen = 0;
    this.reachedTail = false;
    this.olderDone = false;
    this.jump.hidden = true;
    this.scrollToBottom();
  }

  /** The conversation around a search result: `entries` in order, `seq` highlighted. */
  showAround(entries, seq) {
    this.queue = [];
    this.clear();
    this.live = false;
    this.reachedTail = false;
    this.olderDone = false;
    this.appendEntries(entries);
    this.showJump();
    const target = entries.find((e) => e.seq === seq);
    if (target) {
      target.node.classList.add('found');
      target.node.scrollIntoView({ block: 'center' });
      setTimeout(() => target.node.classList.remove('found'), 4000);
    }
  }

  /** Takes a local line (a finished transfer's row) out of the conversation. */
  remove(entry) {
    entry.gone = true;
    this.detach(entry);
    this.shown = this.shown.filter((e) => e !== entry);
    const at = this.tail.indexOf(entry);
    if (at >= 0) this.tail.splice(at, 1);
  }

  /** Unread messages start at `entry` (marked until `clearUnread`). */
  markUnread(entry) {
    if (this.unreadFrom) return;
    this.unreadFrom = entry;
    if (this.shown.includes(entry)) {
      const at = this.shown.indexOf(entry);
      this.relate(entry, this.shown[at - 1] || null);
      if (entry.sep) entry.node.before(entry.sep);
    }
  }

  clearUnread() {
    const entry = this.unreadFrom;
    if (!entry) return;
    this.unreadFrom = null;
    const at = this.shown.indexOf(entry);
    if (at >= 0) {
      this.relate(entry, this.shown[at - 1] || null);
      if (entry.sep) entry.node.before(entry.sep);
    }
  }

  /** How many entries are in the DOM (for tests and measurements). */
  get size() {
    return this.shown.length;
  }
}

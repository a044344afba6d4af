// Attention: what a message from someone else does when the user is not looking at it. It
// counts as unread in its room (the sidebar, the window's title, the tray), and may raise a
// desktop notification, as the room's choice and the user's status allow; a busy room
// makes one now and then one every few seconds saying how many more came.

import { mentions } from './format.js';
import { notifyModes } from './transport.js';

/** At most one desktop notification this often; those in between are counted in it. */
const NOTIFY_EVERY_MS = 3000;

export class Attention {
  /**
   * state: the page's (`chat`: the room whose event this is, `joined`, `focused`); view: the
   * View (`muted` while the room is not on screen); ownStatus(): the user's status;
   * onCounts(): a room's counts changed (the sidebar redraws).
   */
  constructor({ state, view, transport, ownStatus, onCounts }) {
    Object.assign(this, { state, view, transport, ownStatus, onCounts });
    this.pending = null;
    this.titling = null;
  }

  /** Whether the user sees the window. */
  looking() {
    return this.state.focused && !document.hidden;
  }

  /** A message (or file, or location) from someone else in `state.chat`, shown as `entry`. */
  message(ev, entry) {
    const chat = this.state.chat;
    const privately = ev.type === 'private';
    const mentioned = ev.type === 'message' && mentions(ev.text, chat.you);
    // Seen as it comes: the room on screen, in a window the user is looking at.
    if (!this.view.muted && this.looking()) return;
    if (chat.unread === 0) this.view.conversation.markUnread(entry);
    chat.unread += 1;
    if (privately || mentioned) chat.mentions += 1;
    this.updateTitle();
    this.onCounts();
    // Busy is "do not disturb": counted, never a notification.
    if (this.ownStatus() === 'busy') return;
    // The room's choice: a private message counts as a mention (it is to the user alone).
    const mode = notifyModes.get(chat.room);
    if (mode === 'none' || (mode === 'mentions' && !privately && !mentioned)) return;
    const what = { location: 'shared a location', file: `shared ${ev.name}` }[ev.type] ?? ev.text;
    const title = privately
      ? `${ev.from} (private)`
      : mentioned ? `${ev.from} mentioned you in ${chat.room}` : `${ev.from} in ${chat.room}`;
    // Clicking it opens the room at this message. In a busy room: the first now, then one
    // every few seconds saying how many more came (a private message or a mention leads).
    const at = { room: chat.room, seq: ev.seq ?? null };
    const important = privately || mentioned;
    if (this.pending) {
      this.pending.count += 1;
      if (important || !this.pending.important) Object.assign(this.pending, { title, what, at, important });
      return;
    }
    this.notify(title, what, at);
    this.pending = { count: 0, title, what, at, important: false };
    setTimeout(() => {
      const p = this.pending;
      this.pending = null;
      if (p && p.count > 0 && !this.looking()) {
        const more = p.count > 1 ? ` (and ${p.count - 1} more)` : '';
        this.notify(p.title, `${p.what}${more}`, p.at);
      }
    }, NOTIFY_EVERY_MS);
  }

  notify(title, body, at) {
    this.transport.notify(title, body, at).catch((e) => console.warn('notification:', e));
  }

  /** Unread messages in every room joined. */
  totalUnread() {
    return this.state.joined.reduce((sum, c) => sum + c.unread, 0);
  }

  /** The window's title and the tray show the unread count; set at most once a frame. */
  updateTitle() {
    if (this.titling) return;
    this.titling = setTimeout(() => {
      this.titling = null;
      const unread = this.totalUnread();
      const shown = this.state.screenChat;
      const base = shown ? `${shown.room} – LAN Chat` : 'LAN Chat';
      const title = unread > 0 ? `(${unread}) ${base}` : base;
      this.transport.setTitle(title).catch(() => {});
      this.transport.setUnread(unread).catch(() => {});
    }, 50);
  }
}

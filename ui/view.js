// The only module that touches the DOM (with conversation.js, the message list, and
// format.js, a message's text). Peer text always goes in through textContent, never as HTML.
// Elements are looked up once.

import { Conversation } from './conversation.js';
import { formatText, isPlain, isTall, clock } from './format.js';
import { $, el, copyButton } from './dom.js';
import { fileViews } from './files-view.js';
import { searchViews } from './search-view.js';

/** The longest message the host takes, in characters (PROTOCOL.md, "Rules"). */
const MAX_TEXT_CHARS = 4000;

/**
 * One formatter for every time shown: `toLocaleTimeString` with options makes a new one
 * (an ICU object of tens of kB) per call, which WebKit frees only when it collects garbage
 * again, so a busy room made the page grow by about that much per message.
 */

/** How a status reads next to a name. */
const STATUS_WORDS = { available: 'available', away: 'away', busy: 'busy, do not disturb' };

/** Sets a node's text, reusing its one text node when it has one (no new node to collect). */
function setText(node, text) {
  const only = node.firstChild;
  if (only && only.nodeType === Node.TEXT_NODE && !only.nextSibling) only.data = text;
  else node.textContent = text;
}

/**
 * Rows of others' messages that left the page, reused for the next ones shown. In a busy
 * room a new row per message is garbage WebKit frees only at its next collection (about
 * 90 MB of it during a flood of 100,000); a reused row is none.
 */
const spareRows = [];
const SPARE_ROWS = 600;

/**
 * Someone else's message: its row is made (or taken from the spares) when it is shown and
 * goes back to the spares when it leaves the page, so a long room keeps only data.
 */
class OtherMessage {
  constructor(view, { seq, from, text, ts }) {
    this.view = view;
    this.seq = seq;
    this.from = from;
    this.text = text;
    this.ts = ts || Date.now();
    this.own = false;
    this.row = null;
  }

  get node() {
    if (!this.row) this.row = this.fill(spareRows.pop() || OtherMessage.newRow());
    return this.row;
  }

  static newRow() {
    const item = el('li');
    const meta = el('p', 'meta');
    meta.append(el('span', 'from'), el('time', 'time'));
    item.append(meta, el('p', 'text'));
    return item;
  }

  fill(item) {
    const [meta, body] = item.children;
    const [from, time] = meta.children;
    setText(from, this.from);
    setText(time, clock(this.ts));
    time.dateTime = new Date(this.ts).toISOString();
    if (isPlain(this.text)) setText(body, this.text);
    else body.replaceChildren(formatText(this.text, this.view.me));
    body.className = isTall(this.text) ? 'text tall' : 'text';
    item.className = body.querySelector('.mention.me') ? 'message other mentions-me' : 'message other';
    return item;
  }

  /** Out of the page: the row goes back to the spares. */
  release() {
    if (!this.row) return;
    this.row.remove();
    if (spareRows.length < SPARE_ROWS) spareRows.push(this.row);
    this.row = null;
  }
}

export function mapLink(lat, lon) {
  return `https://www.openstreetmap.org/?mlat=${lat}&mlon=${lon}#map=16/${lat}/${lon}`;
}

export class View {
  constructor() {
    this.screens = {
      welcome: $('screen-welcome'),
      home: $('screen-home'),
      chat: $('screen-chat'),
    };
    this.loading = $('loading');
    this.nickForm = $('nick-form');
    this.nickInput = $('nick-input');
    this.nickError = $('nick-error');
    this.nickCancel = $('nick-cancel');
    this.greeting = $('greeting');
    this.settingsButton = $('settings-button');
    this.roomList = $('room-list');
    this.roomsEmpty = $('rooms-empty');
    this.hostCard = $('host-card');
    this.hostForm = $('host-form');
    this.hostRoom = $('host-room');
    this.hostError = $('host-error');
    this.hostPassphrase = $('host-passphrase');
    this.passphraseDialog = $('passphrase-dialog');
    this.passphraseInput = $('passphrase-input');
    // Not a submit button, so Enter in the field means "Join", never "Cancel".
    $('passphrase-cancel').addEventListener('click', () => this.passphraseDialog.close('cancel'));
    this.addressCard = $('address-card');
    this.addressForm = $('address-form');
    this.addressInput = $('address-input');
    this.addressRoom = $('address-room');
    this.addressError = $('address-error');
    this.roomName = $('room-name');
    this.roomMeta = $('room-meta');
    this.userCount = $('user-count');
    this.usersToggle = $('users-toggle');
    this.usersPanel = $('users-panel');
    this.userList = $('user-list');
    this.statusSelect = $('status-select');
    this.leaveButton = $('leave-button');
    this.banner = $('status-banner');
    this.hostingPanel = $('hosting-panel');
    this.hostingAddresses = $('hosting-addresses');
    this.hostingCode = $('hosting-code');
    this.hostingQr = $('hosting-qr');
    this.roomKeyLine = $('room-key');
    this.keyDialog = $('key-dialog');
    this.messages = $('messages');
    this.jumpButton = $('jump-button');
    this.typing = $('typing');
    this.composer = $('composer');
    this.messageInput = $('message-input');
    this.messageError = $('message-error');
    // Enter sends, Shift+Enter starts a new line (as does a paste with line breaks); the
    // box grows with its text up to a few lines, then scrolls.
    this.messageInput.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        this.composer.requestSubmit();
      }
    });
    this.messageInput.addEventListener('input', () => this.fitMessageInput());
    this.locationButton = $('location-button');
    this.fileButton = $('file-button');
    this.privateTo = $('private-to');
    this.privateLabel = $('private-label');
    this.privateCancel = $('private-cancel');
    this.dialog = $('confirm-dialog');
    /** Message elements by client id, to tick them when the host confirms. */
    this.pending = new Map();
    /** Confirmations that arrived before their message's id was known: id -> ts. */
    this.early = new Map();

    /** The reader's nickname, whose @mentions stand out. */
    this.me = null;
    /** Where the conversation's older and newer pages come from (see `onPages`). */
    this.pages = { older: async () => ({ entries: [], more: false }), newer: async () => ({ entries: [], more: false }) };
    // Links in messages open outside the app (or in a new tab), never in this page.
    this.openLink = null;
    this.linkClicked = (e) => {
      const link = e.target.closest?.('a[data-external]');
      if (!link || !this.openLink) return;
      e.preventDefault();
      this.openLink(link.href);
    };
    /** Every room's conversation (its own list and "new messages" button); one is shown. */
    this.conversations = [];
    this.conversation = this.adopt(this.messages, this.jumpButton);
    /**
     * While an event of a room not on screen is handled, the room's header, online list,
     * banner and the like are not touched (its conversation still is: it is kept whole).
     */
    this.muted = false;
    this.mentionables = [];
    this.messageInput.addEventListener('keydown', (e) => {
      if (e.key === 'Tab' && !e.shiftKey && this.completeMention()) e.preventDefault();
    });
    this.searchSetup();
    this.usersToggle.addEventListener('click', () => {
      const open = this.usersPanel.classList.toggle('open');
      this.usersToggle.setAttribute('aria-expanded', String(open));
    });
  }

  show(name) {
    this.loading.hidden = true;
    for (const [key, screen] of Object.entries(this.screens)) screen.hidden = key !== name;
    const focus = { welcome: this.nickInput, chat: this.messageInput }[name];
    if (focus) focus.focus();
  }

  // ---- nickname ----

  askNickname({ current, cancellable }) {
    this.nickInput.value = current || '';
    this.nickError.textContent = '';
    this.nickCancel.hidden = !cancellable;
    this.show('welcome');
  }

  onNickname(handler) {
    this.nickForm.addEventListener('submit', (e) => {
      e.preventDefault();
      handler(this.nickInput.value);
    });
  }

  onNickCancel(handler) {
    this.nickCancel.addEventListener('click', handler);
  }

  nickRefused(message) {
    this.nickError.textContent = message;
    this.nickInput.focus();
  }

  onSettings(handler) {
    this.settingsButton.addEventListener('click', handler);
  }

  // ---- home ----

  home({ nickname, canHost, canDiscover }) {
    this.greeting.textContent = `Hello, ${nickname}!`;
    this.hostCard.hidden = !canHost;
    this.addressCard.hidden = !canDiscover;
    this.show('home');
  }

  /** rooms: [{key, room, host, users, locked, compatible, code, via, address}] */
  rooms(list, onJoin) {
    this.roomList.replaceChildren();
    for (const room of list) {
      const item = el('li', 'room');
      const info = el('div', 'room-info');
      const name = el('strong', 'room-name', room.room);
      if (room.locked) {
        // A word, not an emoji: not every desktop has a font with the padlock.
        const lock = el('span', 'badge lock', 'Locked');
        lock.title = 'Joining needs the passphrase';
        lock.setAttribute('aria-label', 'locked');
        name.append(' ', lock);
      }
      info.append(name);
      const details = [room.host ? `on ${room.host}` : null];
      if (room.users !== null && room.users !== undefined) {
        details.push(`${room.users} ${room.users === 1 ? 'person' : 'people'}`);
      }
      info.append(el('span', 'muted', details.filter(Boolean).join(' · ')));
      if (room.via === 'scan' || room.via === 'added') {
        // Not announced: found by asking its address; say so, and where.
        const how = room.via === 'scan' ? 'found by searching this network' : 'at a host you added';
        info.append(el('span', 'muted via', `${how} · ${room.address}`));
      }
      if (room.code) {
        // Two rooms of the same name from different computers show different codes.
        const code = el('span', 'muted code room-code', `key ${room.code}`);
        code.title = 'The host computer\'s code: compare it with the one on its screen';
        info.append(code);
      }
      const join = el('button', 'primary', 'Join');
      join.type = 'button';
      join.setAttribute('aria-label', `Join ${room.room}${room.host ? ` on ${room.host}` : ''}`);
      join.disabled = room.compatible === false;
      if (room.compatible === false) join.title = 'Needs another version of LAN Chat';
      join.addEventListener('click', () => onJoin(room));
      item.append(info, join);
      this.roomList.append(item);
    }
    this.roomsEmpty.hidden = list.length > 0;
  }

  onHost(handler) {
    this.hostForm.addEventListener('submit', (e) => {
      e.preventDefault();
      handler(this.hostRoom.value, this.hostPassphrase.value);
      this.hostPassphrase.value = '';
    });
  }

  onJoinAddress(handler) {
    this.addressForm.addEventListener('submit', (e) => {
      e.preventDefault();
      handler(this.addressInput.value, this.addressRoom.value);
    });
  }

  /** The address form, emptied once its room is being joined. */
  addressUsed() {
    this.addressInput.value = '';
    this.addressRoom.value = '';
  }

  homeError(which, message) {
    const target = which === 'host' ? this.hostError : this.addressError;
    target.textContent = message || '';
  }

  // ---- chat ----

  adopt(list, jump) {
    list.addEventListener('click', this.linkClicked);
    const conversation = new Conversation(list, jump, {
      older: (seq) => this.pages.older(seq),
      newer: (seq) => this.pages.newer(seq),
    });
    this.conversations.push(conversation);
    return conversation;
  }

  /** A conversation for another room, not shown until `showConversation`. */
  newConversation() {
    const list = el('ol', 'messages');
    list.setAttribute('aria-label', 'Messages');
    list.setAttribute('aria-live', 'polite');
    list.tabIndex = 0;
    list.dataset.elsewhere = '';
    this.usersPanel.parentNode.insertBefore(list, this.usersPanel);
    const jump = el('button', 'jump', 'New messages ↓');
    jump.type = 'button';
    jump.hidden = true;
    jump.dataset.elsewhere = '';
    this.typing.parentNode.insertBefore(jump, this.typing);
    const conversation = this.adopt(list, jump);
    conversation.hide();
    return conversation;
  }

  /**
   * Shows `conversation` (as it was left: its scroll position, its new-messages button);
   * the shown list is always `#messages`.
   */
  showConversation(conversation) {
    // Those leaving the screen note where the reader was before they stop being displayed.
    for (const c of this.conversations) if (c !== conversation) c.hide();
    for (const c of this.conversations) {
      const away = c !== conversation;
      c.list.toggleAttribute('data-elsewhere', away);
      c.jump.toggleAttribute('data-elsewhere', away);
      c.list.id = away ? '' : 'messages';
      c.jump.id = away ? '' : 'jump-button';
    }
    conversation.show();
    this.conversation = conversation;
    this.messages = conversation.list;
    this.jumpButton = conversation.jump;
  }

  dropConversation(conversation) {
    if (this.conversations.length === 1) {
      conversation.reset();
      return;
    }
    conversation.clear();
    conversation.list.remove();
    conversation.jump.remove();
    this.conversations = this.conversations.filter((c) => c !== conversation);
  }

  /** A room shown again: its header, its draft; its conversation as it was. */
  showRoom(room, conversation, draft) {
    this.showConversation(conversation);
    this.roomName.textContent = room;
    this.roomMeta.textContent = '';
    this.closeSearch();
    this.typing.textContent = '';
    this.setPrivateTarget(null);
    this.messageInput.value = draft || '';
    this.fitMessageInput();
    this.show('chat');
  }

  enterChat(room) {
    if (this.muted) {
      this.conversation.reset();
      return;
    }
    this.roomName.textContent = room;
    this.roomMeta.textContent = '';
    this.conversation.reset();
    this.closeSearch();
    this.pending.clear();
    this.early.clear();
    this.typing.textContent = '';
    this.banner.hidden = true;
    this.jumpButton.hidden = true;
    this.setPrivateTarget(null);
    this.messageInput.value = '';
    this.show('chat');
  }

  /** statuses: Map(lowercase nick -> 'away' | 'busy'); own: the reader's own status. */
  users(list, me, onPick, statuses = new Map(), own = 'available') {
    if (this.muted) return;
    this.me = me;
    this.mentionables = list.filter((n) => n.toLowerCase() !== me.toLowerCase());
    this.userList.classList.remove('unknown');
    this.userCount.textContent = String(list.length);
    this.roomMeta.textContent = `${list.length} online · you are ${me}`;
    this.userList.replaceChildren();
    for (const nick of list) {
      const item = el('li');
      const mine = nick.toLowerCase() === me.toLowerCase();
      const status = mine ? own : statuses.get(nick.toLowerCase()) || 'available';
      const button = el('button', `user ${status}`, nick);
      button.type = 'button';
      button.dataset.status = status;
      const dot = el('span', 'status-dot');
      dot.setAttribute('aria-hidden', 'true');
      button.prepend(dot);
      if (status !== 'available') button.append(el('span', 'status-word', ` ${STATUS_WORDS[status]}`));
      if (mine) {
        button.disabled = true;
        button.append(el('span', 'muted', ' (you)'));
      } else {
        const how = status === 'available' ? '' : ` (${STATUS_WORDS[status]})`;
        button.setAttribute('aria-label', `Send a private message to ${nick}${how}`);
        button.addEventListener('click', () => onPick(nick));
      }
      item.append(button);
      this.userList.append(item);
    }
  }

  /** The reader picks a status by hand. */
  onStatusPick(handler) {
    this.statusSelect.addEventListener('change', () => handler(this.statusSelect.value));
  }

  /** The reader's own status, as set by hand or by itself. */
  ownStatus(status) {
    this.statusSelect.value = status;
    this.statusSelect.dataset.status = status;
  }

  /** `older(seq)` and `newer(seq)` resolve to {entries, more}: pages of the conversation. */
  onPages(older, newer) {
    this.pages = { older, newer };
  }

  onOpenLink(handler) {
    this.openLink = handler;
  }

  /** Puts an entry at the live end of the conversation (see conversation.js). */
  append(entry) {
    this.conversation.push(entry);
    return entry;
  }

  /**
   * A chat message. kind: 'own' | 'other'; privateTo/privateFrom for private ones;
   * pending: shown at once, ticked when confirmed.
   */
  message(args) {
    const entry = this.append(this.messageEntry(args));
    if (args.own && args.pending && args.id) this.bind(args.id, entry);
    return entry;
  }

  /** A chat message's entry, not yet in the conversation (for pages of the past too). */
  messageEntry({ seq = null, from, text, ts, own, privateWith, pending, location }) {
    if (!own && !privateWith && !location) return new OtherMessage(this, { seq, from, text, ts });
    const item = el('li', `message ${own ? 'own' : 'other'}${privateWith ? ' private' : ''}`);
    const meta = el('p', 'meta');
    meta.append(el('span', 'from', own ? 'You' : from));
    if (privateWith) meta.append(el('span', 'badge', own ? `private to ${privateWith}` : 'private'));
    const time = el('time', 'time', ts ? clock(ts) : '');
    if (ts) time.dateTime = new Date(ts).toISOString();
    meta.append(time);
    const body = el('p', location || !isTall(text) ? 'text' : 'text tall');
    if (location) {
      body.append(`${own ? 'You' : from} shared a location: `);
      const link = el('a', null, `${location.lat.toFixed(5)}, ${location.lon.toFixed(5)}`);
      link.href = mapLink(location.lat, location.lon);
      link.dataset.external = '';
      link.target = '_blank';
      link.rel = 'noopener noreferrer';
      body.append(link);
    } else {
      body.append(formatText(text, this.me));
      if (body.querySelector('.mention.me')) item.classList.add('mentions-me');
    }
    item.append(meta, body);
    let tick = null;
    if (own) {
      tick = el('span', 'tick', pending ? '…' : '✓');
      tick.setAttribute('aria-label', pending ? 'sending' : 'delivered');
      tick.title = pending ? 'Waiting for the host' : 'Delivered';
      meta.append(tick);
      item.classList.toggle('pending', Boolean(pending));
    }
    return { node: item, item, time, tick, seq, ts: ts || Date.now(), from: own ? null : from, own };
  }

  /** Attaches the client id of a pending message, once known. */
  bind(id, entry) {
    this.pending.set(id, entry);
    if (this.early.has(id)) {
      const ts = this.early.get(id);
      this.early.delete(id);
      this.delivered(id, ts);
    }
  }

  delivered(id, ts) {
    const entry = this.pending.get(id);
    if (!entry) {
      if (this.early.size > 1000) this.early.clear();
      this.early.set(id, ts);
      return;
    }
    this.pending.delete(id);
    entry.item.classList.remove('pending');
    entry.tick.textContent = '✓';
    entry.tick.setAttribute('aria-label', 'delivered');
    entry.tick.title = 'Delivered';
    if (ts) {
      entry.time.textContent = clock(ts);
      entry.time.dateTime = new Date(ts).toISOString();
    }
  }

  failed(id, message) {
    const entry = this.pending.get(id);
    if (!entry) return;
    this.pending.delete(id);
    entry.item.classList.remove('pending');
    entry.item.classList.add('failed');
    entry.tick.textContent = '!';
    entry.tick.setAttribute('aria-label', `not delivered: ${message}`);
    entry.tick.title = message;
  }

  /** A line from the room itself; tone 'warn' for the host's notices (history not saved). */
  system(text, ts, tone, seq = null) {
    return this.append(this.systemEntry(text, ts, tone, seq));
  }

  systemEntry(text, ts, tone, seq = null) {
    const item = el('li', tone ? `system ${tone}` : 'system');
    item.append(el('span', null, text));
    if (ts) item.append(el('time', 'time', clock(ts)));
    return { node: item, seq, ts: ts || Date.now(), from: null, own: false };
  }

  typingNames(names) {
    if (this.muted) return;
    if (names.length === 0) this.typing.textContent = '';
    else if (names.length === 1) this.typing.textContent = `${names[0]} is typing…`;
    else if (names.length <= 3) this.typing.textContent = `${names.join(', ')} are typing…`;
    else this.typing.textContent = 'Several people are typing…';
  }

  /**
   * The banner under the room header. `detail`: the technical reason, shown on demand;
   * `onGoHome`: offers a button to leave (a room its host closed may not come back).
   */
  status(text, tone = 'warn', detail = null, onGoHome = null) {
    if (this.muted) return;
    this.banner.hidden = !text;
    this.banner.dataset.tone = tone;
    this.banner.replaceChildren(el('span', 'banner-text', text || ''));
    if (onGoHome) {
      const home = el('button', 'ghost small', 'Go home');
      home.type = 'button';
      home.id = 'banner-home';
      home.addEventListener('click', onGoHome);
      this.banner.append(' ', home);
    }
    if (detail) {
      const more = el('details', 'banner-detail');
      more.append(el('summary', null, 'Details'), el('span', 'muted', detail));
      this.banner.append(more);
    }
  }

  /** While disconnected: who is online is not known, so the list says so. */
  presenceUnknown(me) {
    if (this.muted) return;
    this.userCount.textContent = '?';
    this.roomMeta.textContent = `not connected: who is online is unknown · you are ${me}`;
    this.userList.classList.add('unknown');
  }

  /** addresses: [{interface, join, link}] or null when not hosting. */
  hosting(addresses) {
    if (this.muted) return;
    this.hostingPanel.hidden = !addresses;
    this.hostingAddresses.replaceChildren();
    for (const a of addresses || []) {
      const item = el('li');
      item.append(el('span', 'muted', `${a.interface}: `));
      item.append(el('code', 'share-link', a.link), ' ', copyButton(a.link, `the ${a.interface} link`));
      item.append(el('span', 'muted', ' · in a browser: '));
      item.append(el('code', 'web-link', a.web), ' ', copyButton(a.web, `the ${a.interface} browser address`));
      this.hostingAddresses.append(item);
    }
  }

  /** The hosting computer's code and the QR code of its first link (rows of '0'/'1'). */
  hostingKey(code, rows) {
    if (this.muted) return;
    this.hostingCode.textContent = code || '';
    const canvas = this.hostingQr;
    const scale = 4;
    const quiet = 4;
    const size = rows && rows.length ? (rows.length + 2 * quiet) * scale : 0;
    canvas.width = size;
    canvas.height = size;
    canvas.hidden = !size;
    if (!size) return;
    const g = canvas.getContext('2d');
    g.fillStyle = '#fff';
    g.fillRect(0, 0, size, size);
    g.fillStyle = '#000';
    rows.forEach((row, y) => {
      for (let x = 0; x < row.length; x += 1) {
        if (row[x] === '1') g.fillRect((x + quiet) * scale, (y + quiet) * scale, scale, scale);
      }
    });
  }

  /** The room header's line about the connection: encrypted, and the host's code. */
  roomKey(text) {
    if (this.muted) return;
    this.roomKeyLine.hidden = !text;
    this.roomKeyLine.textContent = text || '';
  }

  /**
   * A blocking warning: the host's key is not the expected one. Resolves true only when the
   * user explicitly chooses to trust the new key (offered only when `canTrust`).
   */
  askTrust({ expected, presented, reason, canTrust }) {
    const dialog = this.keyDialog;
    $('key-title').textContent = canTrust
      ? 'This host’s identity has changed'
      : 'This is not the host you asked for';
    $('key-text').textContent = reason;
    $('key-expected').textContent = expected;
    $('key-presented').textContent = presented;
    $('key-trust').hidden = !canTrust;
    return new Promise((resolve) => {
      dialog.addEventListener('close', () => resolve(dialog.returnValue === 'trust'), {
        once: true,
      });
      dialog.returnValue = '';
      dialog.showModal();
      $('key-cancel').focus();
    });
  }

  setPrivateTarget(nick) {
    if (this.muted) return;
    this.privateTo.hidden = !nick;
    this.privateLabel.textContent = nick ? `Private message to ${nick}` : '';
    this.messageInput.placeholder = nick ? `Message ${nick} privately…` : 'Type a message…';
    if (nick) this.messageInput.focus();
  }

  onPrivateCancel(handler) {
    this.privateCancel.addEventListener('click', handler);
  }

  fitMessageInput() {
    const box = this.messageInput;
    box.style.height = 'auto';
    box.style.height = `${Math.min(box.scrollHeight + 2, 160)}px`;
  }

  /** Says why the message was not sent (or clears it). */
  messageProblem(text) {
    this.messageError.hidden = !text;
    this.messageError.textContent = text || '';
  }

  onSend(handler) {
    this.composer.addEventListener('submit', (e) => {
      e.preventDefault();
      const text = this.messageInput.value;
      if (text.trim() === '') {
        this.messageInput.focus();
        return;
      }
      // Never cut silently: an over-long message stays in the box with the count.
      const length = [...text].length;
      if (length > MAX_TEXT_CHARS) {
        this.messageProblem(
          `This message has ${length.toLocaleString('en')} characters; at most ` +
            `${MAX_TEXT_CHARS.toLocaleString('en')} can be sent. Shorten it or send it in parts.`,
        );
        this.messageInput.focus();
        return;
      }
      this.messageProblem(null);
      if (handler(text) !== false) {
        this.messageInput.value = '';
        this.fitMessageInput();
      }
      this.messageInput.focus();
    });
  }

  onInput(handler) {
    this.messageInput.addEventListener('input', () => handler(this.messageInput.value));
  }

  onLocation(handler) {
    this.locationButton.addEventListener('click', handler);
  }

  onShareFile(handler) {
    this.fileButton.addEventListener('click', handler);
  }

  /** Images pasted into the message box: `handler([File])`. */
  onPasteFiles(handler) {
    this.messageInput.addEventListener('paste', (e) => {
      const files = [...(e.clipboardData?.files || [])];
      if (files.length) {
        e.preventDefault();
        handler(files);
      }
    });
  }

  // File cards and transfers: files-view.js; search: search-view.js (mixed in below).

  // ---- mentions ----

  /** Tab after "@al" completes a nickname from the online list; false if nothing to do. */
  completeMention() {
    const box = this.messageInput;
    const before = box.value.slice(0, box.selectionStart);
    const m = before.match(/@([\p{L}\p{N}_.-]*)$/u);
    if (!m) return false;
    const prefix = m[1].toLowerCase();
    const nick = this.mentionables.find((n) => n.toLowerCase().startsWith(prefix));
    if (!nick) return false;
    const start = before.length - m[1].length;
    box.setRangeText(`${nick} `, start, box.selectionStart, 'end');
    return true;
  }

  onLeave(handler) {
    this.leaveButton.addEventListener('click', handler);
  }

  /**
   * Asks for a locked room's passphrase; resolves with it, or null if the user cancels.
   * `error` says why it is asked again (a wrong one).
   */
  askPassphrase(room, error) {
    $('passphrase-title').textContent = `Join “${room}”`;
    $('passphrase-error').textContent = error || '';
    this.passphraseInput.value = '';
    return new Promise((resolve) => {
      this.passphraseDialog.addEventListener(
        'close',
        () => {
          const value = this.passphraseInput.value;
          this.passphraseInput.value = '';
          resolve(this.passphraseDialog.returnValue === 'ok' && value ? value : null);
        },
        { once: true },
      );
      this.passphraseDialog.returnValue = 'cancel';
      this.passphraseDialog.showModal();
      this.passphraseInput.focus();
    });
  }

  /** A modal question; resolves true when confirmed. */
  confirm(title, text, ok) {
    $('confirm-title').textContent = title;
    $('confirm-text').textContent = text;
    $('confirm-ok').textContent = ok;
    return new Promise((resolve) => {
      this.dialog.addEventListener('close', () => resolve(this.dialog.returnValue === 'ok'), {
        once: true,
      });
      this.dialog.returnValue = 'cancel';
      this.dialog.showModal();
    });
  }

  title(text) {
    document.title = text;
  }
}

// The View's file cards and transfers, and its search panel, live in modules of their own.
Object.assign(View.prototype, fileViews, searchViews);

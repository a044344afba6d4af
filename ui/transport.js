// The only module that talks to the outside: Tauri commands in the desktop app, or the
// LAN Chat protocol over a WebSocket in a browser that opened the host's link. Both give
// app.js the same interface and the same events:
//   {kind:'welcome', welcome, resumed}  {kind:'event', event}  {kind:'typing', nick, active}
//   {kind:'status', nick, status}
//   {kind:'ack', id, seq, ts}  {kind:'refused', id, code, message}
//   {kind:'disconnected', reason}  {kind:'reconnecting', attempt, delayMs}
//   {kind:'closed', reason, code}

import { Session } from './session.js';
import * as cpace from './cpace.js';
import { identify } from './identity.js';
import { hashBlob } from './sha256.js';

/** Which messages of a room make a notification ('all', 'mentions', 'none'), kept per room
 * in this page's storage (the app's webview keeps it too). */
export const notifyModes = {
  get(room) {
    try {
      return localStorage.getItem(`lanchat.notify.${room.toLowerCase()}`) || 'all';
    } catch {
      return 'all';
    }
  },
  set(room, mode) {
    try {
      localStorage.setItem(`lanchat.notify.${room.toLowerCase()}`, mode);
    } catch {
      // Storage refused (a private window): the choice lasts until the page closes.
    }
  },
};

export function createTransport() {
  return window.__TAURI__ ? new AppTransport(window.__TAURI__) : new BrowserTransport();
}

/** Nickname rules, as the host enforces them (PROTOCOL.md). */
export function checkNickname(raw) {
  const nick = String(raw).trim();
  const length = [...nick].length;
  if (length === 0) return { error: 'the nickname is empty' };
  if (length > 32) return { error: `the nickname has ${length} characters; at most 32 are allowed` };
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f-\u009f]/.test(nick)) {
    return { error: 'the nickname contains a control character' };
  }
  return { nick };
}

class AppTransport {
  constructor(tauri) {
    this.kind = 'app';
    this.canHost = true;
    this.canDiscover = true;
    /** Several rooms at once, each its own connection. */
    this.canJoinSeveral = true;
    /** Each joined room's event socket, by its id. */
    this.relays = new Map();
    this.current = null;
    this.tauri = tauri;
    this.invoke = tauri.core.invoke;
  }

  profile() {
    return this.invoke('profile');
  }

  /** The lanchat:// link the app was started for, if any (asked once, at start). */
  launchLink() {
    return this.invoke('launch_link');
  }

  /** handler(link): a lanchat:// link the system passed to the running app. */
  onOpenLink(handler) {
    this.tauri.event.listen('lanchat://open-link', (e) => handler(e.payload));
  }

  saveNickname(nickname) {
    return this.invoke('set_nickname', { nickname });
  }

  watchRooms(onChange) {
    const channel = new this.tauri.core.Channel();
    channel.onmessage = onChange;
    return this.invoke('watch_rooms', { onChange: channel });
  }

  hostRoom(room, passphrase) {
    return this.invoke('host_room', { room, passphrase });
  }

  /**
   * target: {key} for a discovered room, {address} otherwise; passphrase for a locked one;
   * trustNewKey after the user chose to trust a host whose key changed.
   */
  join(target, room, passphrase, onEvent, trustNewKey = false) {
    // The room's events come over a WebSocket from the app's own side on 127.0.0.1 (see
    // src-tauri/src/relay.rs: Tauri's IPC keeps memory per message on WebKitGTK), in
    // batches, one per frame at most while the room is busy. One per room joined.
    return this.invoke('join_room', { target, room, passphrase, trustNewKey }).then(({ id, relay }) => {
      const socket = new WebSocket(`ws://127.0.0.1:${relay.port}/${relay.token}`);
      socket.onmessage = (m) => JSON.parse(m.data).forEach(onEvent);
      this.relays.set(id, socket);
      return id;
    });
  }

  /** The room (its id from `join`) that later calls without an id are about. */
  show(id) {
    this.current = id;
  }

  /** The host as verified when joining: {code, key, firstUse}. */
  hostKey(id = this.current) {
    return this.invoke('host_key', { room: id });
  }

  send(text) {
    return this.invoke('send_message', { room: this.current, text });
  }

  sendPrivate(to, text) {
    return this.invoke('send_private', { room: this.current, to, text });
  }

  sendLocation(lat, lon) {
    return this.invoke('send_location', { room: this.current, lat, lon });
  }

  typing(active) {
    return this.invoke('set_typing', { room: this.current, active });
  }

  /** status: 'available' | 'away' | 'busy'. */
  setStatus(status) {
    return this.invoke('set_status', { status });
  }

  /** How long the desktop has had no input (ms), or null where the app cannot tell. */
  desktopIdleMs() {
    return this.invoke('desktop_idle_ms');
  }

  leave(id = this.current) {
    this.relays.get(id)?.close();
    this.relays.delete(id);
    return this.invoke('leave_room', { room: id });
  }

  quit() {
    return this.invoke('quit');
  }

  onCloseRequested(handler) {
    return this.tauri.event.listen('lanchat://close-requested', handler);
  }

  /** Whether closing the window keeps the app in the tray (else it quits). */
  trayAvailable() {
    return this.invoke('tray_available');
  }

  /** The unread count, shown on the tray icon. */
  setUnread(count) {
    return this.invoke('set_unread_count', { count });
  }

  /** handler(status): picked in the tray menu. */
  onTrayStatus(handler) {
    this.tauri.event.listen('lanchat://tray-status', (e) => handler(e.payload));
  }

  /** handler(): the window went to the tray. */
  onHidden(handler) {
    this.tauri.event.listen('lanchat://hidden', handler);
  }

  startAtLogin() {
    return this.invoke('start_at_login');
  }

  /** Returns whether it now starts at login. */
  setStartAtLogin(on) {
    return this.invoke('set_start_at_login', { on });
  }

  /** [{room, host, link, code, locked, joinedAt}], newest first. */
  recentRooms() {
    return this.invoke('recent_rooms');
  }

  /** The connectivity doctor's report: {summary, findings, ms, ...}. */
  runDoctor() {
    return this.invoke('run_doctor');
  }

  /** Asks the local subnets for LAN Chat hosts; found rooms join the room list. */
  scanNetwork() {
    return this.invoke('scan_network');
  }

  addHost(address) {
    return this.invoke('add_host', { address });
  }

  removeHost(address) {
    return this.invoke('remove_host', { address });
  }

  addedHosts() {
    return this.invoke('added_hosts');
  }

  /** The room just joined goes first in the recent rooms; returns the list. */
  /** Remembers room `id` among the recent ones (at `address`, when its host moved there). */
  rememberRoom(id, address = null) {
    return this.invoke('remember_room', { room: id, address });
  }

  async setTitle(title) {
    document.title = title;
    await this.tauri.window?.getCurrentWindow().setTitle(title);
  }

  /** Whether files can be shared by picking them (the app: its file dialog). */
  get canPickFiles() {
    return Boolean(this.tauri.dialog);
  }

  /** Asks for files to share: their paths (the engine reads them, not the page). */
  async pickFiles() {
    const picked = await this.tauri.dialog.open({ multiple: true, directory: false });
    if (!picked) return [];
    return (Array.isArray(picked) ? picked : [picked]).map((path) => ({
      path,
      name: String(path).split(/[\\/]/).pop(),
    }));
  }

  /** Files dropped on the window arrive as paths: `handler([{path, name}])`. */
  onFilesDropped(handler) {
    this.tauri.event?.listen('tauri://drag-drop', (e) => {
      const paths = e.payload?.paths || [];
      if (paths.length) handler(paths.map((path) => ({ path, name: String(path).split(/[\\/]/).pop() })));
    });
  }

  /**
   * Shares a picked or dropped file; `onProgress(bytesOnHost, total)`. Resolves `true` when
   * the host has it, `false` when cancelled (`cancelTransfer(transfer)`).
   */
  shareFile(file, to, onProgress, transfer, room = this.current) {
    const channel = new this.tauri.core.Channel();
    channel.onmessage = ([done, total]) => onProgress(done, total);
    return this.invoke('share_file', { room, path: file.path, to: to || null, transfer, onProgress: channel });
  }

  cancelTransfer(transfer) {
    return this.invoke('cancel_transfer', { transfer });
  }

  /**
   * A file pasted into the page (it has no path): its bytes go to the app, which keeps
   * them where it can share them from. Resolves to {path, name}.
   */
  async stashPasted(file) {
    const name = file.name || 'pasted image.png';
    const bytes = new Uint8Array(await file.arrayBuffer());
    const path = await this.tauri.core.invoke('stash_pasted', bytes, {
      headers: { 'x-name': encodeURIComponent(name) },
    });
    return { path, name };
  }

  /** Whether a saved file can be shown in its folder. */
  get canShowInFolder() {
    return true;
  }

  showInFolder(path) {
    return this.invoke('show_in_folder', { path });
  }

  /** Saves a shared file in Downloads; resolves with where (null: cancelled). */
  saveFile(ev, onProgress, transfer) {
    const channel = new this.tauri.core.Channel();
    channel.onmessage = ([done, total]) => onProgress(done, total);
    const card = { name: ev.name, size: ev.size, sha256: ev.sha256, mime: ev.mime, image: ev.image || null };
    return this.invoke('save_file', { room: this.current, id: ev.id, card, transfer, onProgress: channel });
  }

  /** A URL for an image's thumbnail. */
  async thumbnailUrl(id) {
    const bytes = await this.invoke('file_thumbnail', { room: this.current, id });
    return URL.createObjectURL(new Blob([bytes], { type: 'image/png' }));
  }

  /** A URL for an image at full size. */
  async imageUrl(id, mime) {
    const bytes = await this.invoke('file_image', { room: this.current, id });
    return URL.createObjectURL(new Blob([bytes], { type: mime }));
  }

  /** A page of the room's past: `{before}` or `{after}` a seq -> {events, more}. */
  history({ before = null, after = null, limit = 100 }) {
    return this.invoke('history_page', { room: this.current, before, after, limit });
  }

  /** The newest events matching `query` -> {events (newest first), more}. */
  search({ query, from = null, before = null, limit = 30 }) {
    return this.invoke('search_history', { room: this.current, query, from, before, limit });
  }

  /** A link from a message, in the system browser (http and https only). */
  openLink(url) {
    return this.invoke('open_link', { url });
  }

  /** A desktop notification; `at` ({room, seq}) is what a click on it opens. */
  notify(title, body, at = null) {
    return this.invoke('notify', { title, body, at });
  }

  /** handler({room, seq}): a notification was clicked. */
  onNoticeOpened(handler) {
    this.tauri.event.listen('lanchat://notice-opened', (e) => handler(e.payload));
  }

  location() {
    return geolocate();
  }
}

/** Where this computer is, from the platform's location service, if it has one. */
function geolocate() {
  return new Promise((resolve, reject) => {
    if (!navigator.geolocation) {
      reject({ message: 'this computer cannot tell its location' });
      return;
    }
    navigator.geolocation.getCurrentPosition(
      (p) => resolve({ lat: p.coords.latitude, lon: p.coords.longitude }),
      (e) => reject({ message: `no location is available here (${e.message || 'denied'})` }),
      { timeout: 10000, maximumAge: 60000 },
    );
  });
}

const STORAGE_KEY = 'lanchat.nickname';

function randomId(bytes = 8) {
  const buf = new Uint8Array(bytes);
  crypto.getRandomValues(buf);
  return Array.from(buf, (b) => b.toString(16).padStart(2, '0')).join('');
}

class BrowserTransport {
  constructor() {
    this.kind = 'browser';
    this.canHost = false;
    this.canDiscover = false;
    this.canJoinSeveral = false;
    this.url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;
    this.session = null;
    /** The nickname for this visit, also when the browser refuses to store it. */
    this.nickname = null;
  }

  async profile() {
    let nickname = null;
    try {
      nickname = localStorage.getItem(STORAGE_KEY);
    } catch {
      nickname = null; // storage disabled: ask every time
    }
    if (nickname && !checkNickname(nickname).error) this.nickname = nickname;
    return { nickname: this.nickname, awayAfterSeconds: 600 };
  }

  async saveNickname(raw) {
    const { nick, error } = checkNickname(raw);
    if (error) throw { code: 'nick_invalid', message: error };
    this.nickname = nick;
    try {
      localStorage.setItem(STORAGE_KEY, nick);
    } catch {
      // Not remembered, but usable for this visit.
    }
    return nick;
  }

  /** The host that served this page is the one place to look: list its rooms, refreshed. */
  async watchRooms(onChange) {
    const refresh = async () => {
      try {
        const rooms = await this.listRooms();
        onChange({ kind: 'snapshot', rooms });
      } catch {
        onChange({ kind: 'snapshot', rooms: [] });
      }
    };
    await refresh();
    this.roomTimer = setInterval(refresh, 5000);
  }

  listRooms() {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(this.url);
      const timer = setTimeout(() => {
        ws.close();
        reject(new Error('no answer'));
      }, 5000);
      ws.onopen = () => ws.send(JSON.stringify({ type: 'hello', version: 2, client: 'lanchat-web' }));
      ws.onmessage = (m) => {
        const frame = JSON.parse(m.data);
        if (frame.type !== 'hello') return;
        clearTimeout(timer);
        ws.close();
        resolve(
          frame.rooms.map((r) => ({
            key: r.name,
            room: r.name,
            host: frame.host,
            users: r.users,
            locked: Boolean(r.locked),
            compatible: true,
            code: typeof frame.key === 'string' ? shortCode(frame.key) : null,
          })),
        );
      };
      ws.onerror = () => {
        clearTimeout(timer);
        reject(new Error('cannot reach the host'));
      };
    });
  }

  async hostRoom() {
    throw { code: 'unsupported', message: 'Hosting needs the LAN Chat app.' };
  }

  /**
   * The host's code as its hello states it. The browser checked the certificate itself (the
   * user accepted it); comparing this code with the host's screen is the way to know the
   * page is talking to that host.
   */
  async hostKey() {
    const hex = this.session?.hostKey;
    return hex ? { code: shortCode(hex), key: hex, firstUse: false, browser: true } : null;
  }

  async join(_target, room, passphrase, onEvent) {
    clearInterval(this.roomTimer);
    this.session?.stop();
    this.session = new ProtocolSession(this.url, room, this.nickname, onEvent);
    if (passphrase) {
      if (!globalThis.crypto?.subtle) {
        const reason = 'this page is not on https, so it cannot join locked rooms';
        onEvent({ kind: 'closed', reason, code: 'unsupported' });
        return;
      }
      this.session.passphrase = passphrase;
    }
    this.session.start();
    return 'page';
  }

  /** A page is in one room at a time: nothing to choose. */
  show() {}

  get canPickFiles() {
    return true;
  }

  /** Asks for files to share with the browser's picker. */
  pickFiles() {
    return new Promise((resolve) => {
      const input = document.createElement('input');
      input.type = 'file';
      input.multiple = true;
      input.addEventListener('change', () => resolve([...input.files]));
      input.addEventListener('cancel', () => resolve([]));
      input.click();
    });
  }

  /** Dropped files come through the page's own drop event (see app.js). */
  onFilesDropped() {}

  /** A pasted file is already a File the page can send. */
  async stashPasted(file) {
    return file;
  }

  /**
   * Shares a File: hashed piece by piece, then uploaded with its progress (the browser
   * streams it from disk). Resolves when the host has it whole and checked.
   */
  async shareFile(file, to, onProgress, transfer) {
    if (!this.session?.ticket) throw new Error('not connected to the host');
    const sha256 = await hashBlob(file);
    const id = randomId(16);
    const declare = {
      'Upload-Length': String(file.size),
      'Upload-Name': encodeURIComponent(file.name || 'pasted image.png'),
      'Upload-Sha256': sha256,
    };
    if (to) declare['Upload-To'] = encodeURIComponent(to);
    this.uploads ??= new Map();
    // After a lost connection (or a host restart), ask how far the host got and send the
    // rest, with the ticket of the membership as it is now.
    for (let attempt = 0; ; attempt += 1) {
      const ticket = this.session?.ticket;
      let offset = 0;
      if (attempt > 0 && ticket) {
        const head = await fetch(`/files/${id}`, {
          method: 'HEAD',
          headers: { Authorization: `Bearer ${ticket}` },
        }).catch(() => null);
        if (head?.ok) offset = Number(head.headers.get('Upload-Offset') || 0);
      }
      if (this.cancelled?.delete(transfer)) return false;
      const sent = await this.put(file, id, offset, offset === 0 ? declare : {}, ticket, onProgress, transfer);
      if (sent !== 'retry') return sent;
      if (attempt >= 30) throw new Error('the upload was interrupted and the host did not come back');
      await new Promise((r) => setTimeout(r, 1000));
    }
  }

  /** One PUT of the file from `offset`: true (done), false (cancelled), or 'retry'. */
  put(file, id, offset, declare, ticket, onProgress, transfer) {
    return new Promise((resolve, reject) => {
      if (!ticket) {
        resolve('retry');
        return;
      }
      const xhr = new XMLHttpRequest();
      this.uploads.set(transfer, { xhr, id, ticket });
      xhr.onloadend = () => this.uploads.delete(transfer);
      xhr.onabort = () => resolve(false);
      xhr.open('PUT', `/files/${id}`);
      xhr.setRequestHeader('Authorization', `Bearer ${ticket}`);
      xhr.setRequestHeader('Upload-Offset', String(offset));
      for (const [name, value] of Object.entries(declare)) xhr.setRequestHeader(name, value);
      xhr.upload.onprogress = (e) => onProgress(offset + e.loaded, file.size);
      xhr.onload = () => {
        if (xhr.status < 300) resolve(true);
        // A ticket from before a reconnect, or an offset the host corrects: try again.
        else if (xhr.status === 401 || xhr.status === 409) resolve('retry');
        else reject(new Error(xhr.responseText.trim() || `the host answered ${xhr.status}`));
      };
      xhr.onerror = () => resolve('retry');
      // A slice of a File is read from disk as it is sent, not copied into memory.
      xhr.send(offset > 0 ? file.slice(offset) : file);
    });
  }

  /** Stops an upload; the host deletes what it had of it. */
  async cancelTransfer(transfer) {
    const upload = this.uploads?.get(transfer);
    if (!upload) {
      // Between two attempts: the next one does not start.
      (this.cancelled ??= new Set()).add(transfer);
      return;
    }
    upload.xhr.abort();
    await fetch(`/files/${upload.id}`, {
      method: 'DELETE',
      headers: { Authorization: `Bearer ${upload.ticket}` },
    }).catch(() => {});
  }

  get canShowInFolder() {
    return false;
  }

  async imageUrl(id) {
    const ticket = this.session?.ticket;
    if (!ticket) throw new Error('not connected to the host');
    return `/files/${id}/image?t=${ticket}`;
  }

  /** Saves a shared file: the browser's own download (streamed to disk, with its progress). */
  async saveFile(ev) {
    const ticket = this.session?.ticket;
    if (!ticket) throw new Error('not connected to the host');
    const link = document.createElement('a');
    link.href = `/files/${ev.id}?t=${ticket}`;
    link.download = ev.name;
    link.rel = 'noopener';
    document.body.append(link);
    link.click();
    link.remove();
    return 'your Downloads';
  }

  /** GET /history or /search with the membership's ticket (PROTOCOL.md). */
  async past(path, params) {
    const ticket = this.session?.ticket;
    if (!ticket) throw new Error('not connected to the host');
    const query = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined) query.set(k, v);
    const answer = await fetch(`${path}?${query}`, {
      headers: { Authorization: `Bearer ${ticket}` },
      cache: 'no-store',
    });
    if (!answer.ok) throw new Error((await answer.text()).trim() || `the host answered ${answer.status}`);
    const page = await answer.json();
    return { events: page.events || page.hits || [], more: Boolean(page.more) };
  }

  history({ before = null, after = null, limit = 100 }) {
    return this.past('/history', { before, after, limit });
  }

  search({ query, from = null, before = null, limit = 30 }) {
    return this.past('/search', { q: query, from, before, limit });
  }

  /** A link from a message, in a new tab that cannot reach back into this page. */
  async openLink(url) {
    window.open(url, '_blank', 'noopener,noreferrer');
  }

  async thumbnailUrl(id) {
    const ticket = this.session?.ticket;
    if (!ticket) throw new Error('not connected to the host');
    return `/files/${id}/thumb?t=${ticket}`;
  }

  async send(text) {
    return this.session.request({ type: 'send', text });
  }

  async sendPrivate(to, text) {
    return this.session.request({ type: 'send_private', to, text });
  }

  async sendLocation(lat, lon) {
    return this.session.request({ type: 'send_location', lat, lon });
  }

  async typing(active) {
    this.session?.typing(active);
  }

  async setStatus(status) {
    this.session?.setStatus(status);
  }

  /** A page cannot know the desktop's idle time: only its own input counts. */
  async desktopIdleMs() {
    return null;
  }

  async leave() {
    this.session?.stop();
    this.session = null;
  }

  async quit() {}

  async onCloseRequested() {}

  async trayAvailable() {
    return false;
  }

  async setUnread() {}

  onTrayStatus() {}

  onHidden() {}

  async recentRooms() {
    return [];
  }

  async rememberRoom() {
    return [];
  }

  async setTitle(title) {
    document.title = title;
  }

  async notify(title, body, at = null) {
    if (!('Notification' in window)) return;
    if (Notification.permission === 'default') await Notification.requestPermission();
    if (Notification.permission !== 'granted') return;
    const notice = new Notification(title, { body });
    notice.onclick = () => {
      window.focus();
      if (at) this.noticeOpened?.(at);
    };
  }

  onNoticeOpened(handler) {
    this.noticeOpened = handler;
  }

  location() {
    return geolocate();
  }
}

/** Four groups of five digits from a key's fingerprint, as lanchat::identity makes them. */
export function shortCode(hex) {
  const groups = [];
  for (let i = 0; i < 4; i += 1) {
    const n = parseInt(hex.slice(i * 8, i * 8 + 8), 16);
    groups.push(String(n % 100000).padStart(5, '0'));
  }
  return groups.join(' ');
}

/**
 * Answers a locked room's challenge (see cpace.js): stretches the passphrase with the room's
 * salt (once per salt), then the client's side of the exchange. Unbound: a page cannot see
 * the certificate its browser accepted.
 */
async function unlockAnswer(session, challenge) {
  if (!session.key || session.keySalt !== challenge.salt) {
    session.key = await cpace.roomKey(session.passphrase, cpace.fromHex(challenge.salt));
    session.keySalt = challenge.salt;
  }
  const ctx = {
    binding: new Uint8Array(0),
    nonce: challenge.nonce,
    room: cpace.nameKey(session.state.config.room),
  };
  const a = await cpace.answer(session.key, ctx, cpace.fromHex(challenge.share), cpace.randomSeed());
  return { answer: { share: cpace.toHex(a.share), tag: cpace.toHex(a.tag) }, hostTag: cpace.toHex(a.hostTag) };
}

/**
 * One room membership over a WebSocket: drives a Session (session.js, the twin of the
 * engine's client session) and reconnects with backoff when the connection is lost.
 */
class ProtocolSession {
  constructor(url, room, nick, onEvent) {
    this.url = url;
    this.onEvent = onEvent;
    this.sessionId = randomId(16);
    this.state = new Session({
      room,
      nick,
      session: this.sessionId,
      locked: false,
      bound: false,
      // On https the page proves a key of its own (see identity.js).
      identify: Boolean(globalThis.crypto?.subtle),
      client: 'lanchat-web',
      outboxLimit: 1000,
    });
    this.ws = null;
    this.attempt = 0;
    this.stopped = false;
    /** A locked room's passphrase; the room key is stretched from it with the room's salt. */
    this.passphrase = null;
    this.key = null;
    this.keySalt = null;
    /** How the current connection ended, when the session said so first. */
    this.ended = null;
  }

  start() {
    if (this.stopped) return;
    this.state.config.locked = Boolean(this.passphrase);
    const ws = new WebSocket(this.url);
    this.ws = ws;
    this.ended = null;
    ws.onopen = () => this.perform(ws, this.state.connected(randomId()));
    ws.onmessage = (m) => {
      let frame;
      try {
        frame = JSON.parse(m.data);
      } catch {
        return; // not ours to understand
      }
      if (frame.type === 'hello' && typeof frame.key === 'string') this.hostKey = frame.key;
      if (frame.type === 'welcome' && typeof frame.files === 'string') this.ticket = frame.files;
      this.perform(ws, this.state.frame(frame, Date.now()));
    };
    ws.onclose = (e) => {
      if (this.ws !== ws || this.stopped) return;
      this.ws = null;
      this.lost(this.ended?.reason || e.reason || 'the connection was lost');
    };
    this.joinTimer = setTimeout(() => {
      if (this.ws === ws && !this.state.isLive) {
        this.ended = { retry: true, reason: 'the host did not answer the join' };
        ws.close();
      }
    }, 5000);
  }

  /** Carries out what the session asked for. */
  perform(ws, outputs) {
    for (const o of outputs) {
      if (o.send) {
        if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(o.send));
      } else if (o.emit) {
        if (o.emit.kind === 'welcome') this.attempt = 0;
        this.onEvent(o.emit);
      } else if ('identify' in o) {
        identify(o.identify).then(
          ({ key, sig }) => {
            if (this.ws === ws) this.perform(ws, this.state.identified(key, sig));
          },
          () => {
            // No key can be made here: join without one (the host then knows the page by
            // its nickname only, as before).
            if (this.ws !== ws) return;
            this.state.config.identify = false;
            ws.close();
          },
        );
      } else if ('prove' in o) {
        unlockAnswer(this, o.prove).then(
          ({ answer, hostTag }) => {
            if (this.ws === ws) this.perform(ws, this.state.joinWithProof(answer, hostTag));
          },
          (e) => {
            if (this.ws !== ws) return;
            this.stop();
            this.onEvent({ kind: 'closed', reason: e.message, code: 'passphrase_wrong' });
          },
        );
      } else if (o.end) {
        this.ended = o.end;
        if (o.end.retry) {
          ws.close();
        } else {
          this.stop();
          this.onEvent({ kind: 'closed', reason: o.end.reason, code: o.end.code });
          return;
        }
      }
    }
    clearTimeout(this.wakeTimer);
    const at = this.state.nextWake();
    if (at !== null) {
      this.wakeTimer = setTimeout(() => {
        if (this.ws === ws) this.perform(ws, this.state.wake(Date.now()));
      }, Math.max(0, at - Date.now()));
    }
  }

  lost(reason) {
    this.state.disconnected();
    clearTimeout(this.joinTimer);
    clearTimeout(this.wakeTimer);
    this.onEvent({ kind: 'disconnected', reason });
    this.attempt += 1;
    const base = Math.min(250 * 2 ** (this.attempt - 1), 5000);
    const delayMs = Math.round(base * (0.8 + 0.4 * Math.random()));
    this.onEvent({ kind: 'reconnecting', attempt: this.attempt, delayMs });
    this.timer = setTimeout(() => this.start(), delayMs);
  }

  /** frame: a request without its id ({type:'send', text}, ...); returns the id. */
  request(frame) {
    const id = randomId();
    const outputs = this.state.request(id, frame); // throws {code:'outbox_full'} when full
    if (this.ws) this.perform(this.ws, outputs);
    return id;
  }

  typing(active) {
    if (this.ws) this.perform(this.ws, this.state.typing(active));
  }

  setStatus(status) {
    const outputs = this.state.setStatus(status); // kept for every later join too
    if (this.ws) this.perform(this.ws, outputs);
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    clearTimeout(this.joinTimer);
    clearTimeout(this.wakeTimer);
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      if (ws.readyState === WebSocket.OPEN && this.state.isLive) {
        ws.send(JSON.stringify({ type: 'leave', id: randomId() }));
      }
      ws.close();
    }
  }
}

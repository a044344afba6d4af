// DOM for what the app does as a desktop citizen: the "On this computer" card (start at
// login, the tray), the recent rooms on the home screen, and a room's notification choice.

import { $, el } from './dom.js';

const NOTIFY_MODES = ['all', 'mentions', 'none'];

function ago(seconds) {
  const s = Math.max(0, Date.now() / 1000 - seconds);
  if (s < 90) return 'just now';
  if (s < 90 * 60) return `${Math.round(s / 60)} minutes ago`;
  if (s < 36 * 3600) return `${Math.round(s / 3600)} hours ago`;
  return `${Math.round(s / 86400)} days ago`;
}

export class DesktopView {
  constructor() {
    this.card = $('desktop-card');
    this.startAtLogin = $('start-at-login');
    this.error = $('desktop-error');
    this.trayNote = $('tray-note');
    this.recent = $('recent');
    this.recentList = $('recent-list');
    this.notifySelect = $('notify-select');
    this.roomBarNav = $('room-bar');
    this.roomTabs = $('room-tabs');
    this.roomAdd = $('room-add');
    this.switchDialog = $('switch-dialog');
    this.switchInput = $('switch-input');
    this.switchList = $('switch-list');
    this.onAdd = null;
    this.roomAdd.addEventListener('click', () => this.onAdd?.());
  }

  /**
   * The sidebar of joined rooms: [{key, room, hosting, unread, mentions, current}]; onPick(key)
   * shows one, onAdd() goes to the home screen to join or host another. Hidden with none.
   */
  roomBar(rooms, onPick, onAdd) {
    this.onAdd = onAdd;
    this.rooms = rooms;
    this.onPick = onPick;
    const shown = rooms.length > 0;
    this.roomBarNav.hidden = !shown;
    document.body.classList.toggle('with-rooms', shown);
    // Each room keeps its tab (updated in place: a busy room redraws it often).
    this.tabs ??= new Map();
    const items = rooms.map((r) => {
      let tab = this.tabs.get(r.key);
      if (!tab) {
        tab = this.newTab(r.key);
        this.tabs.set(r.key, tab);
      }
      this.fillTab(tab, r);
      return tab.item;
    });
    for (const [key, tab] of this.tabs) {
      if (!rooms.some((r) => r.key === key)) this.tabs.delete(key);
      else continue;
      tab.item.remove();
    }
    items.forEach((item, i) => {
      if (this.roomTabs.children[i] !== item) this.roomTabs.insertBefore(item, this.roomTabs.children[i] ?? null);
    });
  }

  newTab(key) {
    const item = el('li');
    const button = el('button', 'room-tab');
    button.type = 'button';
    const name = el('span', 'tab-name');
    const host = el('span', 'tab-host', 'hosting');
    const mention = el('span', 'count mention');
    const unread = el('span', 'count unread');
    button.append(name, host, mention, unread);
    button.addEventListener('click', () => this.onPick?.(key));
    item.append(button);
    return { item, button, name, host, mention, unread };
  }

  fillTab(tab, r) {
    tab.button.dataset.room = r.room;
    tab.button.setAttribute('aria-current', String(r.current));
    tab.name.textContent = r.room;
    tab.host.hidden = !r.hosting;
    tab.mention.hidden = r.mentions === 0;
    tab.mention.textContent = `@${r.mentions}`;
    tab.mention.title = `${r.mentions} mentioning you or private`;
    tab.unread.hidden = r.unread === 0;
    tab.unread.textContent = String(r.unread);
    tab.unread.title = `${r.unread} unread`;
    const label = [r.room, r.hosting ? 'you host it' : null,
      r.unread ? `${r.unread} unread` : null, r.mentions ? `${r.mentions} mentions` : null];
    tab.button.setAttribute('aria-label', label.filter(Boolean).join(', '));
  }

  /** Ctrl+K: a box to type a room's name; Enter goes to the first that matches. */
  openSwitcher() {
    if (!this.rooms?.length || this.switchDialog.open) return;
    const fill = () => {
      const words = this.switchInput.value.trim().toLowerCase();
      const matches = this.rooms.filter((r) => r.room.toLowerCase().includes(words));
      this.switchList.replaceChildren(...matches.map((r) => {
        const item = el('li');
        const go = el('button', 'ghost', r.unread ? `${r.room} (${r.unread})` : r.room);
        go.type = 'button';
        go.addEventListener('click', () => this.pickSwitch(r));
        item.append(go);
        return item;
      }));
      return matches;
    };
    this.switchInput.value = '';
    this.switchInput.oninput = fill;
    this.switchDialog.onsubmit = (e) => {
      e.preventDefault();
      const first = fill()[0];
      if (first) this.pickSwitch(first);
    };
    fill();
    this.switchDialog.showModal();
    this.switchInput.focus();
  }

  pickSwitch(r) {
    this.switchDialog.close();
    this.onPick?.(r.key);
  }

  /** The app only: whether it starts at login, and what closing the window does. */
  desktop({ startAtLogin, trayAvailable }) {
    this.card.hidden = false;
    this.startAtLogin.checked = startAtLogin;
    this.error.textContent = '';
    this.trayNote.textContent = trayAvailable
      ? 'Closing the window keeps LAN Chat and its rooms running in the tray; quit from the tray menu.'
      : 'This desktop shows no tray icons: closing the window quits LAN Chat (and closes a room you host).';
    this.trayNote.dataset.tray = String(trayAvailable);
  }

  onStartAtLogin(handler) {
    this.startAtLogin.addEventListener('change', () => handler(this.startAtLogin.checked));
  }

  startAtLoginResult(on, error) {
    this.startAtLogin.checked = on;
    this.error.textContent = error || '';
  }

  /**
   * recent: [{room, host, link, code, locked, joinedAt}], newest first; `listed(r)` says
   * whether the room is in the discovered list right now; onJoin(r) joins it.
   */
  recentRooms(recent, listed, onJoin) {
    this.recentList.replaceChildren();
    for (const r of recent) {
      const item = el('li', 'room recent-room');
      const info = el('div', 'room-info');
      info.append(el('strong', 'room-name', r.room));
      const where = r.host ? `on ${r.host}` : r.link.replace(/^lanchat:\/\/([^/]+).*$/, '$1');
      const seen = listed(r) ? 'on the network now' : `last joined ${ago(r.joinedAt)}`;
      info.append(el('span', 'muted', `${where} · ${seen}`));
      const join = el('button', '', 'Join again');
      join.type = 'button';
      join.setAttribute('aria-label', `Join ${r.room} again`);
      join.addEventListener('click', () => onJoin(r));
      item.append(info, join);
      this.recentList.append(item);
    }
    this.recent.hidden = recent.length === 0;
  }

  /** The room's notification choice: 'all', 'mentions' or 'none'. */
  notifyMode(mode) {
    this.notifySelect.value = NOTIFY_MODES.includes(mode) ? mode : 'all';
    this.notifySelect.dataset.mode = this.notifySelect.value;
  }

  onNotifyMode(handler) {
    this.notifySelect.addEventListener('change', () => {
      this.notifySelect.dataset.mode = this.notifySelect.value;
      handler(this.notifySelect.value);
    });
  }
}

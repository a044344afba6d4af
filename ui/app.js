// Wiring: decides what happens when. Talks to the outside only through transport.js and to
// the page only through view.js.

import { createTransport, checkNickname, notifyModes } from './transport.js';
import { View } from './view.js';
import { DesktopView } from './desktop-view.js';
import { ReachView } from './reach-view.js';
import { Attention } from './attention.js';
import { wireSharing } from './sharing.js';
import { OwnStatus } from './status.js';

const transport = createTransport();
const view = new View();
const desktop = new DesktopView();
const reach = new ReachView();

const TYPING_REFRESH_MS = 2500; // the host forgets "typing" after 6 s without a refresh
const TYPING_IDLE_MS = 4000; // stop saying "typing" this long after the last keystroke

const state = {
  nickname: null,
  /**
   * The room on screen (null on the home screen); while an event of another room is
   * handled (`inRoom`), that room. {id, room, you, users: [], hosting, typing, unread, …}
   */
  chat: null,
  /** Every room joined, in the order joined (the sidebar's). */
  joined: [],
  /** The room on screen, also while another one's event is handled. */
  screenChat: null,
  rooms: [],
  /** Rooms joined lately (the app only). */
  recent: [],
  /** Transfers started, for their ids. */
  transfers: 0,
  focused: document.hasFocus(),
  typingSentAt: 0,
  typingIdle: null,
  privateTo: null,
};

function message(error) {
  if (!error) return 'Something went wrong.';
  if (typeof error === 'string') return error;
  return error.message || String(error);
}

// ---- status: available, away, busy ----

/** The user's own status (status.js); made once the settings are read. */
let ownStatus = null;

const attention = new Attention({
  state,
  view,
  transport,
  ownStatus: () => ownStatus?.status ?? 'available',
  onCounts: () => renderRoomBar(),
});

function statusChanged(status) {
  view.ownStatus(status);
  // Also outside a room: the app ticks it in its tray menu.
  transport.setStatus(status).catch((e) => console.warn('status:', e));
  if (state.chat) usersChanged();
}

view.onStatusPick((status) => ownStatus?.set(status));
transport.onTrayStatus((status) => ownStatus?.set(status));

/** Someone's status (`available` is the absence of one). */
function setStatusOf(nick, status) {
  const statuses = state.chat.statuses;
  if (status === 'available') statuses.delete(nick.toLowerCase());
  else statuses.set(nick.toLowerCase(), status);
}

// ---- nickname ----

async function boot() {
  let profile = { nickname: null };
  try {
    profile = await transport.profile();
  } catch (e) {
    console.warn('profile unavailable', e);
  }
  ownStatus = new OwnStatus({
    awayAfterMs: (profile.awayAfterSeconds ?? 600) * 1000,
    desktopIdleMs: () => transport.desktopIdleMs(),
    onChange: statusChanged,
  });
  if (profile.nickname) {
    state.nickname = profile.nickname;
    goHome();
    // Started for a link: straight into its room.
    const link = await transport.launchLink?.().catch(() => null);
    if (link) openLink(link);
  } else {
    view.askNickname({ current: '', cancellable: false });
  }
}

view.onNickname(async (raw) => {
  const checked = checkNickname(raw);
  if (checked.error) {
    view.nickRefused(capitalize(checked.error) + '.');
    return;
  }
  try {
    state.nickname = await transport.saveNickname(checked.nick);
    goHome();
  } catch (e) {
    view.nickRefused(capitalize(message(e)));
  }
});

view.onNickCancel(() => goHome());
view.onSettings(() => view.askNickname({ current: state.nickname, cancellable: true }));

function capitalize(text) {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

// ---- home ----

let watching = false;

/** The home screen; rooms joined stay joined (the sidebar leads back to them). */
function goHome() {
  if (state.chat) {
    state.chat.draft = view.messageInput.value;
    clearTyping();
    clearTimeout(state.typingIdle);
    sendTyping(false);
    state.chat = null;
  }
  state.screenChat = null;
  view.home({
    nickname: state.nickname,
    canHost: transport.canHost,
    canDiscover: transport.canDiscover,
  });
  view.rooms(state.rooms, joinListed);
  showRecent();
  attention.updateTitle();
  renderRoomBar();
  if (transport.kind === 'app') {
    Promise.all([transport.startAtLogin(), transport.trayAvailable()])
      .then(([startAtLogin, trayAvailable]) => desktop.desktop({ startAtLogin, trayAvailable }))
      .catch((e) => console.warn('desktop settings:', e));
    transport.recentRooms().then((list) => {
      state.recent = list;
      showRecent();
    }).catch((e) => console.warn('recent rooms:', e));
  }
  if (!watching) {
    watching = true;
    if (transport.kind === 'app') wireReach();
    transport
      .watchRooms((change) => {
        state.rooms = change.rooms;
        offerDoctorSoon();
        if (!state.chat) {
          view.rooms(state.rooms, joinListed);
          showRecent();
        }
      })
      .catch((e) => view.homeError('address', `Room discovery is not available: ${message(e)}`));
  }
}

// ---- "Can't see a room?" (the app) ----

/** After this long with no room listed, the doctor is offered by itself. */
const OFFER_DOCTOR_AFTER_MS = 6000;
let offerTimer = null;

function offerDoctorSoon() {
  if (transport.kind !== 'app') return;
  clearTimeout(offerTimer);
  reach.offerDoctor(false);
  if (state.rooms.length === 0) {
    offerTimer = setTimeout(() => reach.offerDoctor(state.rooms.length === 0), OFFER_DOCTOR_AFTER_MS);
  }
}

function wireReach() {
  const showAdded = () => transport.addedHosts().then((list) => reach.addedHosts(list));
  reach.wire({
    doctor: async () => {
      reach.doctorRunning();
      try {
        reach.doctorReport(await transport.runDoctor());
      } catch (e) {
        reach.doctorFailed(message(e));
      }
    },
    scan: async () => {
      reach.scanning(true);
      try {
        reach.scanned(await transport.scanNetwork());
      } catch (e) {
        reach.scanFailed(message(e));
      } finally {
        reach.scanning(false);
      }
    },
    add: async (address) => {
      try {
        reach.hostAdded(await transport.addHost(address));
      } catch (e) {
        reach.addFailed(message(e));
      }
      showAdded();
    },
    remove: async (address) => {
      await transport.removeHost(address).catch((e) => reach.addFailed(message(e)));
      showAdded();
    },
  });
  showAdded().catch((e) => console.warn('added hosts:', e));
  offerDoctorSoon();
}

async function joinListed(room) {
  let passphrase = null;
  if (room.locked) {
    passphrase = await view.askPassphrase(room.room);
    if (!passphrase) return;
  }
  enterRoom({ key: room.key }, room.room, { hosting: null, passphrase });
}

// ---- recent rooms, start at login ----

/** A recent room as listed on the network now (same name, same host key), if it is. */
function listedNow(recent) {
  return state.rooms.find((r) => r.room === recent.room && recent.code && r.code === recent.code);
}

function showRecent() {
  desktop.recentRooms(state.recent, (r) => Boolean(listedNow(r)), joinRecent);
}

/** Found on the network: joined there (its address may have changed); else at its link. */
async function joinRecent(recent) {
  const listed = listedNow(recent);
  if (listed) return joinListed(listed);
  let passphrase = null;
  if (recent.locked) {
    passphrase = await view.askPassphrase(recent.room);
    if (!passphrase) return;
  }
  enterRoom({ address: recent.link }, recent.room, { hosting: null, passphrase });
}

desktop.onStartAtLogin(async (on) => {
  try {
    desktop.startAtLoginResult(await transport.setStartAtLogin(on));
  } catch (e) {
    desktop.startAtLoginResult(!on, capitalize(message(e)));
  }
});

view.onHost(async (name, passphrase) => {
  const room = name.trim();
  if (!room) {
    view.homeError('host', 'Give the room a name.');
    return;
  }
  view.homeError('host', '');
  try {
    const hosting = await transport.hostRoom(room, passphrase || null);
    await enterRoom({ address: hosting.local }, hosting.room, {
      hosting,
      passphrase: passphrase || null,
    });
  } catch (e) {
    view.homeError('host', capitalize(message(e)));
  }
});

/** The room a lanchat:// link names ('' when it names none), or null when it is damaged. */
function roomOfLink(address) {
  const linked = /^lanchat:\/\/[^/]+\/([^?#]+)/.exec(address.trim());
  if (!linked) return '';
  try {
    return decodeURIComponent(linked[1]);
  } catch {
    return null;
  }
}

view.onJoinAddress(async (address, room) => {
  view.homeError('address', '');
  const fromLink = roomOfLink(address);
  if (fromLink === null) {
    view.homeError('address', 'That link is damaged: copy it again from the host.');
    return;
  }
  const name = room.trim() || fromLink;
  if (!address.trim()) {
    view.homeError('address', 'Type the address the host gave you.');
    return;
  }
  if (!name) {
    view.homeError('address', 'Which room? Type its name (or paste a lanchat:// link).');
    return;
  }
  view.addressUsed();
  await enterRoom({ address: address.trim() }, name, { hosting: null, passphrase: null });
});

/**
 * A lanchat:// link the system handed the app (clicked in a browser or a mail): it started
 * the app, or a second launch passed it to this one. Joins its room, unless hosting one.
 */
async function openLink(link) {
  const room = roomOfLink(link);
  if (!room || !state.nickname) return;
  if (!transport.canJoinSeveral && state.chat?.hosting) {
    view.system(`A link to ${room} was opened: leave this room (you host it) to join that one.`);
    return;
  }
  await enterRoom({ address: link }, room, { hosting: null, passphrase: null });
}

transport.onOpenLink?.(openLink);

// ---- chat ----

/**
 * Joins a room (alongside those joined already, where the transport can) and shows it; a
 * room joined already is just shown.
 */
async function enterRoom(target, room, { hosting, passphrase, trustNewKey = false }) {
  // The same room of the same host (by the list's key or the address used).
  const already = state.joined.find((c) => sameNick(c.room, room) && sameTarget(c.target, target));
  if (already && !trustNewKey) {
    showRoom(already);
    return;
  }
  if (already) await dropRoom(already);
  if (!transport.canJoinSeveral) for (const other of [...state.joined]) await dropRoom(other);
  const chat = {
    id: null,
    room,
    you: state.nickname,
    users: [],
    usersSeq: 0,
    /** Who is away or busy, by lowercase nickname. */
    statuses: new Map(),
    hosting,
    typing: new Map(),
    target,
    passphrase,
    conversation: view.newConversation(),
    /** Messages from others not seen yet, and how many of them name the user. */
    unread: 0,
    mentions: 0,
    draft: '',
    /** The banner's and the key line's content, shown again with the room. */
    banner: null,
    keyLine: null,
  };
  state.joined.push(chat);
  showRoom(chat);
  inRoom(chat, () => banner('Connecting…', 'info'));
  try {
    chat.id = await transport.join(target, room, passphrase, (e) => inRoom(chat, () => onRoomEvent(e)), trustNewKey);
    if (state.chat === chat) transport.show(chat.id);
  } catch (e) {
    inRoom(chat, () => banner(`Cannot join: ${message(e)}`, 'error'));
  }
}

function sameTarget(a, b) {
  return (a.key ?? null) === (b.key ?? null) && (a.address ?? null) === (b.address ?? null);
}

/**
 * Handles something of `chat` as if it were on screen; when it is not, only its own
 * conversation and its model change (view.muted), and `state.chat` is itself meanwhile.
 */
function inRoom(chat, handle) {
  if (!state.joined.includes(chat)) return undefined;
  const shown = state.chat;
  if (shown === chat) return handle();
  const conversation = view.conversation;
  state.chat = chat;
  view.conversation = chat.conversation;
  view.muted = true;
  try {
    return handle();
  } finally {
    state.chat = shown;
    view.conversation = conversation;
    view.muted = false;
  }
}

/** The banner under the room's header, kept with the room for when it is shown again. */
function banner(...args) {
  state.chat.banner = args[0] ? args : null;
  view.status(...args);
}

function keyLine(text) {
  state.chat.keyLine = text;
  view.roomKey(text);
}

/** Shows a joined room as the user left it: conversation, scroll position, draft. */
function showRoom(chat) {
  const was = state.chat;
  if (was && was !== chat) {
    was.draft = view.messageInput.value;
    clearTyping();
    // Typing there stops when the user leaves its draft (the host would wait 6 s).
    clearTimeout(state.typingIdle);
    sendTyping(false);
  }
  state.chat = chat;
  state.screenChat = chat;
  state.privateTo = null;
  if (chat.id) transport.show(chat.id);
  view.showRoom(chat.room, chat.conversation, chat.draft);
  desktop.notifyMode(notifyModes.get(chat.room));
  showHosting(chat.hosting);
  view.roomKey(chat.keyLine);
  view.status(...(chat.banner || [null]));
  if (chat.users.length) renderUsers();
  else view.presenceUnknown(chat.you);
  if (document.hasFocus()) {
    chat.unread = 0;
    chat.mentions = 0;
  }
  drawRoomBar();
  attention.updateTitle();
}

/** Leaves `chat` (the host's room closes if this app hosts it) and forgets it. */
async function dropRoom(chat) {
  state.joined = state.joined.filter((c) => c !== chat);
  for (const timer of chat.typing.values()) clearTimeout(timer);
  view.dropConversation(chat.conversation);
  if (state.chat === chat) state.chat = null;
  if (state.screenChat === chat) state.screenChat = null;
  renderRoomBar();
  attention.updateTitle();
  if (chat.id) await transport.leave(chat.id).catch(() => {});
}

/** After leaving the room on screen: the next joined one, or home. */
function showNextOrHome() {
  const next = state.joined.at(-1);
  if (next) showRoom(next);
  else goHome();
}

// Ctrl+K (or Cmd+K): jump to a joined room by name.
document.addEventListener('keydown', (e) => {
  if ((e.ctrlKey || e.metaKey) && !e.altKey && e.key.toLowerCase() === 'k' && transport.canJoinSeveral) {
    e.preventDefault();
    desktop.openSwitcher();
  }
});

/** The sidebar is drawn at most once a frame (a timer too: frames stop while hidden). */
function renderRoomBar() {
  if (!transport.canJoinSeveral || state.barDrawing) return;
  let done = false;
  const draw = () => {
    if (done) return;
    done = true;
    state.barDrawing = null;
    drawRoomBar();
  };
  state.barDrawing = { frame: requestAnimationFrame(draw), timer: setTimeout(draw, 100) };
}

function drawRoomBar() {
  desktop.roomBar(
    state.joined.map((c) => ({
      key: c,
      room: c.room,
      hosting: Boolean(c.hosting),
      unread: c.unread,
      mentions: c.mentions,
      current: c === state.screenChat,
    })),
    (c) => showRoom(c),
    () => goHome(),
  );
}

function onRoomEvent(e) {
  const chat = state.chat;
  if (!chat) return;
  switch (e.kind) {
    case 'welcome':
      return welcome(e.welcome, e.resumed);
    case 'event':
      return roomEvent(e.event, true);
    case 'typing':
      return typing(e.nick, e.active);
    case 'status':
      setStatusOf(e.nick, e.status);
      return usersChanged();
    case 'ack':
      return view.delivered(e.id, e.ts);
    case 'refused':
      if (e.id) view.failed(e.id, e.message);
      else view.system(`Not sent: ${e.message}`);
      return;
    case 'disconnected': {
      clearTyping();
      const why = plainReason(e.reason);
      chat.lostBecause = why;
      chat.lostDetail = e.reason;
      // Who is online is not known while we are away: say so rather than show a stale list.
      // Who was here stays known: when they come back after the outage (a restarted host
      // sees everyone join again), that is not news.
      chat.away ??= new Set(chat.users.map((u) => u.toLowerCase()));
      view.presenceUnknown(chat.you);
      if (why === HOST_CLOSED) {
        // Said once in the conversation; the banner offers to go home meanwhile.
        if (!chat.closedByHost) view.system('The host closed the room.');
        chat.closedByHost = true;
        banner(`${HOST_CLOSED}. Waiting for it to come back…`, 'warn', e.reason, leaveRoom);
      } else {
        banner(`${why}. Reconnecting…`, 'warn', e.reason);
      }
      return;
    }
    case 'relocated':
      // The host was found again at another address: say where, once, and join it there
      // next time from the recent rooms.
      if (transport.kind === 'app' && !chat.hosting) {
        transport.rememberRoom(chat.id, e.address).then((list) => {
          state.recent = list;
        }).catch((err) => console.warn('recent rooms:', err));
      }
      return view.system(e.message);
    case 'reconnecting':
      // Keep saying why while retrying, in words; the details are one click away.
      if (chat.closedByHost) {
        banner(`${HOST_CLOSED}. Waiting for it to come back…`, 'warn', chat.lostDetail, leaveRoom);
      } else {
        banner(
          `${chat.lostBecause || 'The connection was lost'}. Reconnecting (attempt ${e.attempt})…`,
          'warn',
          chat.lostDetail,
        );
      }
      return;
    case 'closed':
      clearTyping();
      if (e.code === 'left') return;
      if (e.code === 'passphrase_required' || e.code === 'passphrase_wrong') {
        askAgain(chat, e.code === 'passphrase_wrong' ? 'Wrong passphrase. Try again.' : '');
        return;
      }
      if (e.code === 'host_key_changed') {
        keyChanged(chat, e);
        return;
      }
      banner(`${capitalize(e.reason)}.`, 'error');
      view.system(`You are no longer in the room: ${e.reason}`);
      return;
    default:
  }
}

/** The host's key is not the expected one: warn, and go on only if the user trusts it. */
async function keyChanged(chat, e) {
  banner('Not connected: this host could not prove who it is.', 'error');
  const trust = await view.askTrust({
    expected: e.expected,
    presented: e.presented,
    reason: e.reason,
    canTrust: Boolean(e.canTrust),
  });
  if (!state.joined.includes(chat)) return;
  if (!trust) {
    const shown = state.chat === chat;
    await dropRoom(chat);
    if (shown) showNextOrHome();
    return;
  }
  enterRoom(chat.target, chat.room, {
    hosting: chat.hosting,
    passphrase: chat.passphrase,
    trustNewKey: true,
  });
}

function showHosting(hosting) {
  view.hosting(hosting ? hosting.addresses : null);
  if (hosting) view.hostingKey(hosting.code, hosting.qr);
}

/** Says in the room header that the connection is encrypted, and to whom. */
async function showRoomKey() {
  const chat = state.chat;
  const host = await transport.hostKey(chat.id).catch(() => null);
  if (!state.joined.includes(chat)) return;
  const how = host?.browser ? 'Encrypted (https)' : 'Encrypted';
  inRoom(chat, () => keyLine(host ? `${how} · host code ${host.code}` : 'Encrypted'));
  if (host?.firstUse && !chat.hosting) {
    inRoom(chat, () => view.system(
      `First time here: this host's code is ${host.code}. Compare it with the code on the host's screen.`,
    ));
  }
}

/** A locked room refused us: ask for the passphrase (again) and retry, or go home. */
async function askAgain(chat, error) {
  banner('This room is locked.', 'info');
  const passphrase = await view.askPassphrase(chat.room, error);
  if (!state.joined.includes(chat)) return;
  if (!passphrase) {
    const shown = state.chat === chat;
    await dropRoom(chat);
    if (shown) showNextOrHome();
    return;
  }
  // A new attempt is a new connection: this one ends first.
  await dropRoom(chat);
  enterRoom(chat.target, chat.room, { hosting: chat.hosting, passphrase });
}

const HOST_CLOSED = 'The host closed the room';

/** What went wrong, in words a person understands (the details stay available). */
function plainReason(reason) {
  const r = String(reason || '');
  if (/closed the room|host closing/i.test(r)) return HOST_CLOSED;
  if (/refused|no answer|not answered|did not answer|timed out|not announced|unreachable|cannot connect|cannot resolve/i.test(r)) {
    return 'The host is not answering';
  }
  if (/too slow|fell behind/i.test(r)) return 'The connection was too slow to keep up';
  return 'The connection was lost';
}

function welcome(w, resumed) {
  const chat = state.chat;
  chat.closedByHost = false;
  if (!resumed) chat.away = null;
  chat.room = w.room;
  chat.you = w.you;
  chat.users = w.users.slice();
  chat.usersSeq = w.seq;
  chat.statuses = new Map(Object.entries(w.statuses || {}).map(([n, s]) => [n.toLowerCase(), s]));
  // A new connection starts available; a reconnect repeats the status by itself.
  if (!resumed && ownStatus && ownStatus.status !== 'available') {
    transport.setStatus(ownStatus.status).catch((e) => console.warn('status:', e));
  }
  banner(null);
  if (!resumed && !chat.hosting) {
    transport.rememberRoom(chat.id).then((list) => {
      state.recent = list;
    }).catch((e) => console.warn('recent rooms:', e));
  }
  if (!resumed) {
    view.enterChat(w.room);
    showHosting(chat.hosting);
    showRoomKey();
    renderRoomBar();
    view.system(`Welcome to ${w.room}, ${w.you}!`);
  } else {
    view.system('Reconnected.');
  }
  for (const event of w.history) roomEvent(event, false);
  // Those back already (their return was in the history, or not recorded at all) are
  // settled; the others may still come back quietly.
  for (const nick of w.users) chat.away?.delete(nick.toLowerCase());
  if (w.complete === false) view.system('Some earlier messages are no longer available.');
  if (w.history_saved === false) {
    view.system('The host cannot save this room\'s history right now; the chat goes on.', null, 'warn');
  }
  renderUsers();
}

function renderUsers() {
  const chat = state.chat;
  view.users(chat.users, chat.you, (nick) => {
    state.privateTo = nick;
    view.setPrivateTarget(nick);
  }, chat.statuses, ownStatus?.status ?? 'available');
}

function sameNick(a, b) {
  return a.toLowerCase() === b.toLowerCase();
}

/** Who joined (or left): "ana", "ana and bo", "ana, bo and 3 others". */
function names(list, verb) {
  if (list.length === 1) return `${list[0]} ${verb}`;
  if (list.length <= 4) return `${list.slice(0, -1).join(', ')} and ${list.at(-1)} ${verb}`;
  return `${list.slice(0, 3).join(', ')} and ${list.length - 3} others ${verb}`;
}

const LEFT_HOW = { left: 'left', disconnected: 'disconnected', dropped: 'was disconnected by the host' };

/**
 * The conversation entry of one event, without applying it to the room's state (for live
 * events, and for pages of the past). `others`: for `joined`, who to name (null: all but me).
 */
function entryFor(ev, others = null) {
  const chat = state.chat;
  switch (ev.type) {
    case 'message':
    case 'private':
    case 'location': {
      const own = sameNick(ev.from, chat.you);
      return view.messageEntry({
        seq: ev.seq,
        from: ev.from,
        text: ev.text,
        ts: ev.ts,
        own,
        privateWith: ev.type === 'private' ? (own ? ev.to : ev.from) : null,
        location: ev.type === 'location' ? { lat: ev.lat, lon: ev.lon } : null,
      });
    }
    case 'file': {
      const own = sameNick(ev.from, chat.you);
      return view.fileEntry({
        ev,
        own,
        thumb: () => transport.thumbnailUrl(ev.id),
        full: () => transport.imageUrl(ev.id, ev.mime),
        onSave: (say) => saveFile(ev, say),
        onShow: transport.canShowInFolder
          ? (path) => transport.showInFolder(path).catch((e) => view.system(`Cannot show the folder: ${message(e)}`))
          : null,
      });
    }
    case 'joined': {
      // In a rush of joins the host announces several at once (`also`).
      const list = others ?? [ev.nick, ...(ev.also || [])].filter((n) => !sameNick(n, chat.you));
      return list.length ? view.systemEntry(names(list, 'joined'), ev.ts, null, ev.seq) : null;
    }
    case 'left': {
      const list = [ev.nick, ...(ev.also || [])];
      const verb = list.length === 1 ? LEFT_HOW[ev.reason] || 'left' : 'left';
      return view.systemEntry(names(list, verb), ev.ts, null, ev.seq);
    }
    case 'notice':
      return view.systemEntry(ev.text, ev.ts, 'warn', ev.seq);
    case 'renamed':
      return view.systemEntry(`${ev.from} is now known as ${ev.to}`, ev.ts, null, ev.seq);
    default:
      return null;
  }
}

/** Events from the host's history as conversation entries, in order. */
function pastEntries(page) {
  return { entries: page.events.map((ev) => entryFor(ev)).filter(Boolean), more: page.more };
}

view.onPages(
  async (seq) => pastEntries(await transport.history({ before: seq, limit: 100 })),
  async (seq) => pastEntries(await transport.history({ after: seq, limit: 100 })),
);
view.onOpenLink((url) => {
  transport.openLink(url).catch((e) => view.system(`${capitalize(message(e))}.`));
});

/** Applies and shows one sequenced event; `live` ones may notify. */
function roomEvent(ev, live) {
  const chat = state.chat;
  const current = ev.seq > chat.usersSeq;
  let others = null;
  switch (ev.type) {
    case 'message':
    case 'private':
    case 'location':
    case 'file':
      stopTyping(ev.from);
      break;
    case 'joined': {
      const nicks = [ev.nick, ...(ev.also || [])];
      // Someone who was here before we lost the host and is back: a quiet return.
      others = nicks.filter((n) => !sameNick(n, chat.you) && !chat.away?.delete(n.toLowerCase()));
      if (current) {
        for (const nick of nicks) {
          if (!chat.users.some((u) => sameNick(u, nick))) chat.users.push(nick);
        }
      }
      break;
    }
    case 'left': {
      // When many leave at once the host announces them together (`also`).
      const nicks = [ev.nick, ...(ev.also || [])];
      nicks.forEach(stopTyping);
      for (const nick of nicks) chat.away?.delete(nick.toLowerCase());
      if (current) {
        chat.users = chat.users.filter((u) => !nicks.some((n) => sameNick(u, n)));
        for (const nick of nicks) chat.statuses.delete(nick.toLowerCase());
      }
      if (state.privateTo && nicks.some((n) => sameNick(state.privateTo, n))) {
        state.privateTo = null;
        view.setPrivateTarget(null);
      }
      break;
    }
    case 'renamed':
      stopTyping(ev.from);
      if (current) {
        chat.users = chat.users.map((u) => (sameNick(u, ev.from) ? ev.to : u));
        const status = chat.statuses.get(ev.from.toLowerCase());
        if (status) {
          chat.statuses.delete(ev.from.toLowerCase());
          chat.statuses.set(ev.to.toLowerCase(), status);
        }
      }
      break;
    default:
      break;
  }
  const entry = entryFor(ev, others);
  if (!entry) return;
  view.append(entry);
  const fromOther = ['message', 'private', 'location', 'file'].includes(ev.type) && !entry.own;
  if (live && fromOther) attention.message(ev, entry);
  if (current) {
    chat.usersSeq = ev.seq;
    if (['joined', 'left', 'renamed'].includes(ev.type)) usersChanged();
  }
}

/** The online list is drawn at most once a frame, however many come and go. */
function usersChanged() {
  if (state.usersDrawing) return;
  state.usersDrawing = requestAnimationFrame(() => {
    state.usersDrawing = null;
    if (state.chat) renderUsers();
  });
}

// ---- search ----

const SEARCH_PAGE = 30;

async function search(words, from, before = null) {
  state.search = { words, from, last: null };
  try {
    const found = await transport.search({ query: words, from, before, limit: SEARCH_PAGE });
    if (state.search?.words !== words) return;
    state.search.last = found.events.at(-1)?.seq ?? null;
    view.searchResults({ words, hits: found.events, more: found.more, onPick: openAt });
  } catch (e) {
    view.searchResults({ words, error: message(e) });
  }
}

view.onSearch(
  (words, from) => search(words, from),
  () => state.search && search(state.search.words, state.search.from, state.search.last),
);

/** The conversation around one event (a search result), that event highlighted. */
async function openAt(ev) {
  try {
    const [before, after] = await Promise.all([
      transport.history({ before: ev.seq + 1, limit: 50 }),
      transport.history({ after: ev.seq, limit: 50 }),
    ]);
    const entries = pastEntries({ events: before.events.concat(after.events), more: false }).entries;
    view.conversation.showAround(entries, ev.seq);
  } catch (e) {
    view.system(`Cannot open that message: ${message(e)}`);
  }
}

// ---- typing ----

function typing(nick, active) {
  const chat = state.chat;
  clearTimeout(chat.typing.get(nick));
  if (active) {
    // Should the "stop" never come, forget it a little after the host would.
    chat.typing.set(nick, setTimeout(() => inRoom(chat, () => stopTyping(nick)), 8000));
  } else {
    chat.typing.delete(nick);
  }
  view.typingNames([...chat.typing.keys()]);
}

function stopTyping(nick) {
  const chat = state.chat;
  if (!chat || !chat.typing.has(nick)) return;
  clearTimeout(chat.typing.get(nick));
  chat.typing.delete(nick);
  view.typingNames([...chat.typing.keys()]);
}

function clearTyping() {
  const chat = state.chat;
  if (!chat) return;
  for (const timer of chat.typing.values()) clearTimeout(timer);
  chat.typing.clear();
  view.typingNames([]);
}

view.onInput((text) => {
  if (!state.chat) return;
  clearTimeout(state.typingIdle);
  if (text.trim() === '') {
    sendTyping(false);
    return;
  }
  if (Date.now() - state.typingSentAt > TYPING_REFRESH_MS) {
    state.typingSentAt = Date.now();
    transport.typing(true).catch(() => {});
  }
  state.typingIdle = setTimeout(() => sendTyping(false), TYPING_IDLE_MS);
});

function sendTyping(active) {
  if (!active && state.typingSentAt === 0) return;
  state.typingSentAt = 0;
  transport.typing(active).catch(() => {});
}

// ---- sending ----

view.onSend((text) => {
  const chat = state.chat;
  if (!chat) return false;
  clearTimeout(state.typingIdle);
  state.typingSentAt = 0; // the host ends "typing" when a message arrives
  const to = state.privateTo;
  view.conversation.clearUnread();
  // Shown at once; ticked when the host confirms.
  const entry = view.message({ from: chat.you, text, own: true, pending: true, privateWith: to });
  const request = to ? transport.sendPrivate(to, text) : transport.send(text);
  Promise.resolve(request)
    .then((id) => view.bind(id, entry))
    .catch((e) => {
      view.system(`Not sent: ${message(e)}`);
      entry.item.classList.add('failed');
    });
  return true;
});

view.onPrivateCancel(() => {
  state.privateTo = null;
  view.setPrivateTarget(null);
});

view.onLocation(async () => {
  if (!state.chat) return;
  try {
    const { lat, lon } = await transport.location();
    const entry = view.message({ from: state.chat.you, own: true, pending: true, location: { lat, lon } });
    view.bind(await transport.sendLocation(lat, lon), entry);
  } catch (e) {
    view.system(`Cannot share a location: ${message(e)}`);
  }
});

// ---- files (sharing.js) ----

const { saveFile } = wireSharing({ state, view, transport, message });

// ---- leaving ----

async function leaveRoom() {
  const chat = state.chat;
  if (!chat) return true;
  if (chat.hosting) {
    const ok = await view.confirm(
      `Close “${chat.room}” for everyone?`,
      'You are hosting this room. If you leave, it closes and everyone in it is disconnected.',
      'Close the room',
    );
    if (!ok) return false;
  }
  clearTyping();
  state.privateTo = null;
  await dropRoom(chat);
  showNextOrHome();
  return true;
}

view.onLeave(() => {
  leaveRoom();
});

transport.onCloseRequested(async () => {
  const hosted = state.joined.find((c) => c.hosting);
  if (hosted) {
    const ok = await view.confirm(
      'Quit and close the room?',
      `You are hosting “${hosted.room}”. Quitting closes it for everyone in it.`,
      'Quit',
    );
    if (!ok) return;
  }
  await transport.quit();
});

// ---- attention: notifications and unread counts (attention.js) ----

desktop.onNotifyMode((mode) => {
  if (state.chat) notifyModes.set(state.chat.room, mode);
});

/** A notification was clicked: its room, at its message (the window is brought forward). */
transport.onNoticeOpened(({ room, seq }) => {
  const chat = state.joined.find((c) => sameNick(c.room, room));
  if (!chat) return;
  state.focused = true;
  showRoom(chat);
  if (seq !== null && seq !== undefined) openAt({ seq });
});

window.addEventListener('focus', () => {
  state.focused = true;
  const chat = state.chat;
  if (chat && (chat.unread > 0 || chat.mentions > 0)) {
    chat.unread = 0;
    chat.mentions = 0;
    attention.updateTitle();
    renderRoomBar();
  }
});
window.addEventListener('blur', () => {
  state.focused = false;
});
// Closed to the tray: nobody is looking, whatever WebKit says about focus.
transport.onHidden(() => {
  state.focused = false;
});

boot();

// One room membership as a state machine that does no I/O, for browsers: frames and user
// requests in, outputs out. It is the twin of the engine's client session
// (engine/src/client/session.rs) and both are tested against the same scenarios
// (tests/scenarios/session.json). transport.js drives it over a WebSocket.
//
// Outputs: {send: frame}, {emit: event} (the page's event shapes), {identify: nonce} (sign
// it with the page's key, then call identified), {prove: {nonce, salt, share}} (answer a
// locked room's challenge with cpace.js, then call joinWithProof), {end: {retry, code?,
// reason}}.

/** How long a request refused as rate_limited waits before it goes again. */
export const RATE_LIMIT_RETRY_MS = 1000;

const HOST_UNPROVEN = 'this host does not know the room\'s passphrase: it is not the room\'s '
  + 'real host, and nothing was shown or sent to it';

const RETRY_BYES = new Set(['host_closing', 'too_slow', 'host_full', 'timeout', 'too_many_connections']);
const RETRY_REFUSALS = new Set(['host_full', 'host_busy', 'too_many_connections', 'rate_limited']);

function sameName(a, b) {
  return a.toLowerCase() === b.toLowerCase();
}

/** The id of the client request an event answers (messages, locations, asked renames). */
function requestId(event) {
  switch (event.type) {
    case 'message':
    case 'private':
    case 'location':
    case 'renamed':
      return event.id ?? null;
    default:
      return null;
  }
}

export class Session {
  /** config: {room, nick, session, locked, bound, identify, client, outboxLimit} */
  constructor(config) {
    this.config = config;
    this.nick = config.nick;
    this.phase = 'offline'; // 'offline' | 'joining' | 'live'
    this.joinId = null;
    /** Requests not yet acknowledged, in order: id -> request (a frame without its id). */
    this.outbox = new Map();
    /** {epoch, seq}: the highest event reported so far. */
    this.since = null;
    /** Sequence numbers of our own acknowledged events above since.seq. */
    this.own = new Set();
    this.joinedOnce = false;
    /** Ids held after a rate_limited refusal, and when they go again (ms). */
    this.held = new Set();
    this.heldUntil = null;
    /** A welcome whose history is still coming in pieces. */
    this.receiving = null;
    /**
     * The hello's nonce while it is being signed ({signing}), a locked room's nonce once its
     * challenge is asked for ({nonce}), then the host tag its welcome must carry ({hostTag}).
     */
    this.unlock = null;
    /** How available the user said they are; every join repeats it. */
    this.status = 'available';
  }

  get pending() {
    return this.outbox.size;
  }

  get isLive() {
    return this.phase === 'live';
  }

  connected(joinId) {
    this.receiving = null;
    this.held.clear();
    this.heldUntil = null;
    this.unlock = null;
    this.phase = 'joining';
    this.joinId = joinId;
    const hello = { send: { type: 'hello', version: 2, client: this.config.client } };
    return this.config.locked || this.config.identify ? [hello] : [hello, this.joinFrame(null)];
  }

  /** The page's signature over the hello's nonce: identify, then join or ask to unlock. */
  identified(key, sig) {
    if (this.phase !== 'joining' || !this.unlock || !('signing' in this.unlock)) return [];
    const nonce = this.unlock.signing;
    this.unlock = null;
    return [{ send: { type: 'identify', key, sig } }, ...this.afterHello(nonce)];
  }

  afterHello(nonce) {
    if (!this.config.locked) return [this.joinFrame(null)];
    this.unlock = { nonce };
    return [{
      send: { type: 'unlock', id: this.joinId, room: this.config.room, bound: this.config.bound },
    }];
  }

  /** answer: {share, tag} in hex; hostTag: the tag the welcome must carry. */
  joinWithProof(answer, hostTag) {
    if (this.phase !== 'joining') return [];
    this.unlock = { hostTag };
    return [this.joinFrame(answer)];
  }

  joinFrame(unlock) {
    const join = {
      type: 'join',
      id: this.joinId,
      room: this.config.room,
      nick: this.nick,
      session: this.config.session,
    };
    if (this.since) join.since = { ...this.since };
    if (unlock) join.unlock = { share: unlock.share, tag: unlock.tag };
    if (this.status !== 'available') join.status = this.status;
    return { send: join };
  }

  disconnected() {
    if (this.receiving) {
      // Half a welcome: our own stay ours, and requests it showed to be stored wait for
      // the next one (or are resent, de-duplicated by the host).
      this.own = this.receiving.own;
      const back = new Map(this.receiving.acked.map((a) => [a.id, a.request]));
      for (const [id, request] of this.outbox) back.set(id, request);
      this.outbox = back;
      this.receiving = null;
    }
    this.phase = 'offline';
    this.held.clear();
    this.heldUntil = null;
  }

  /** request: a request frame without its id ({type:'send', text}, ...). */
  request(id, request) {
    if (this.outbox.size >= this.config.outboxLimit) {
      throw { code: 'outbox_full', message: 'Too many messages are waiting for the host.' };
    }
    this.outbox.set(id, request);
    if (this.phase !== 'live') return [];
    if (this.heldUntil !== null) {
      this.held.add(id); // behind a rate-limited request: wait with it, keep the order
      return [];
    }
    return [{ send: { ...request, id } }];
  }

  typing(active) {
    return this.phase === 'live' ? [{ send: { type: 'typing', active } }] : [];
  }

  /** The user's status ('available' | 'away' | 'busy'): sent now while in the room, and
   * with every join from now on. */
  setStatus(status) {
    const changed = this.status !== status;
    this.status = status;
    return this.phase === 'live' && changed ? [{ send: { type: 'status', status } }] : [];
  }

  leave(id) {
    const out = this.phase !== 'offline' ? [{ send: { type: 'leave', id } }] : [];
    this.phase = 'offline';
    out.push({ end: { retry: false, code: 'left', reason: 'you left the room' } });
    return out;
  }

  nextWake() {
    return this.heldUntil;
  }

  wake(now) {
    if (this.heldUntil === null || now < this.heldUntil) return [];
    this.heldUntil = null;
    const held = this.held;
    this.held = new Set();
    const out = [];
    for (const [id, request] of this.outbox) {
      if (held.has(id)) out.push({ send: { ...request, id } });
    }
    return out;
  }

  frame(f, now) {
    switch (f.type) {
      case 'hello':
        if (this.phase !== 'joining') return [];
        if (this.config.identify) {
          this.unlock = { signing: f.nonce || '' };
          return [{ identify: f.nonce || '' }];
        }
        return this.config.locked ? this.afterHello(f.nonce || '') : [];
      case 'challenge':
        if (this.phase !== 'joining' || !this.unlock || !('nonce' in this.unlock)) return [];
        if (f.id !== this.joinId) return [];
        if (f.salt && f.share) {
          return [{ prove: { nonce: this.unlock.nonce, salt: f.salt, share: f.share } }];
        }
        this.unlock = null; // not locked after all
        return [this.joinFrame(null)];
      case 'welcome':
        if (this.phase !== 'joining' || f.id !== this.joinId) return [];
        if (this.unlock && 'hostTag' in this.unlock && f.unlock !== this.unlock.hostTag) {
          return [{ end: { retry: false, code: 'host_unproven', reason: HOST_UNPROVEN } }];
        }
        return this.welcome(f);
      case 'error':
        return this.error(f, now);
      case 'bye':
        return [{ end: RETRY_BYES.has(f.code)
          ? { retry: true, reason: f.message }
          : { retry: false, code: f.code, reason: f.message } }];
      case 'typing':
        return this.phase === 'live'
          ? [{ emit: { kind: 'typing', nick: f.nick, active: f.active } }]
          : [];
      case 'status':
        return this.phase === 'live'
          ? [{ emit: { kind: 'status', nick: f.nick, status: f.status } }]
          : [];
      case 'ack':
        return this.ack(f);
      case 'history':
        return this.historyPiece(f);
      default:
        return this.event(f);
    }
  }

  welcome(f) {
    const resumed = this.joinedOnce;
    if (!this.since || this.since.epoch !== f.epoch) {
      this.own.clear();
      this.since = null;
    }
    const joining = {
      resumed,
      after: this.since ? this.since.seq : 0,
      own: this.own,
      acked: [],
      welcome: {
        id: f.id,
        room: f.room,
        epoch: f.epoch,
        seq: f.seq,
        you: f.you,
        users: f.users,
        history: [],
        complete: f.complete,
        history_saved: f.history_saved ?? true,
      },
    };
    if (f.unlock) joining.welcome.unlock = f.unlock;
    if (f.statuses && Object.keys(f.statuses).length > 0) joining.welcome.statuses = f.statuses;
    this.own = new Set();
    this.absorb(joining, f.history);
    if (f.more) {
      this.receiving = joining; // the rest of the history follows in `history` frames
      return [];
    }
    return this.joined(joining);
  }

  historyPiece(f) {
    const joining = this.receiving;
    if (!joining) return [];
    this.absorb(joining, f.events);
    if (f.more) return [];
    this.receiving = null;
    return this.joined(joining);
  }

  /** Keeps events not reported before; our own requests found in them are acknowledged. */
  absorb(joining, events) {
    for (const e of events) {
      if (e.seq <= joining.after || joining.own.has(e.seq)) continue;
      const id = requestId(e);
      if (id !== null && this.outbox.has(id)) {
        // Stored before the connection died: that is its acknowledgement.
        joining.acked.push({ id, request: this.outbox.get(id), seq: e.seq, ts: e.ts });
        this.outbox.delete(id);
        continue;
      }
      joining.welcome.history.push(e);
    }
  }

  joined(joining) {
    const { welcome, resumed, after, acked } = joining;
    this.nick = welcome.you;
    this.since = { epoch: welcome.epoch, seq: Math.max(welcome.seq, after) };
    this.joinedOnce = true;
    this.phase = 'live';
    const out = [{ emit: { kind: 'welcome', welcome, resumed } }];
    for (const a of acked) out.push({ emit: { kind: 'ack', id: a.id, seq: a.seq, ts: a.ts } });
    for (const [id, request] of this.outbox) out.push({ send: { ...request, id } });
    return out;
  }

  ack(f) {
    const request = this.outbox.get(f.id);
    if (request === undefined) return [];
    this.outbox.delete(f.id);
    this.held.delete(f.id);
    if (typeof f.seq === 'number' && this.since && f.seq > this.since.seq) this.own.add(f.seq);
    if (request.type === 'nick') this.nick = request.nick;
    return [{ emit: { kind: 'ack', id: f.id, seq: f.seq ?? null, ts: f.ts ?? null } }];
  }

  error(f, now) {
    const id = f.id ?? null;
    if (this.phase === 'joining' && (id === null || id === this.joinId)) {
      return [{ end: RETRY_REFUSALS.has(f.code)
        ? { retry: true, reason: f.message }
        : { retry: false, code: f.code, reason: f.message } }];
    }
    const queued = id !== null && this.outbox.has(id);
    if (f.code === 'rate_limited' && queued) {
      // Not lost, only early: it goes again after a pause (still pending).
      this.held.add(id);
      if (this.heldUntil === null) this.heldUntil = now + RATE_LIMIT_RETRY_MS;
      return [];
    }
    if (queued) this.outbox.delete(id);
    return [{ emit: { kind: 'refused', id, code: f.code, message: f.message } }];
  }

  event(f) {
    if (typeof f.seq !== 'number' || this.phase !== 'live' || !this.since) return [];
    if (f.seq <= this.since.seq) return []; // already reported
    this.since.seq = f.seq;
    for (const s of this.own) if (s <= f.seq) this.own.delete(s);
    // A takeover may rename us without our asking.
    if (f.type === 'renamed' && sameName(f.from, this.nick)) this.nick = f.to;
    return [{ emit: { kind: 'event', event: f } }];
  }
}

// The user's own status: available, away or busy (do not disturb). Set by hand, or away by
// itself after a while without input at the desktop (the app asks the system; a browser
// only knows its own page's input), and available again at the next input. Wiring only:
// no DOM, no network; app.js passes the changes on.

/** How often the idle time is looked at, at most. */
const CHECK_EVERY_MS = 5000;

export class OwnStatus {
  /**
   * awayAfterMs: idle this long means away (0: never); desktopIdleMs(): resolves to the
   * desktop's idle time in ms, or null where it cannot be known; onChange(status).
   */
  constructor({ awayAfterMs, desktopIdleMs, onChange }) {
    this.status = 'available';
    /** Away by itself (not by hand): the next input brings it back. */
    this.auto = false;
    this.awayAfterMs = awayAfterMs;
    this.desktopIdleMs = desktopIdleMs;
    this.onChange = onChange;
    this.lastInput = Date.now();
    const input = () => {
      this.lastInput = Date.now();
      if (this.auto) this.check();
    };
    for (const type of ['keydown', 'pointerdown', 'pointermove', 'wheel', 'focus']) {
      window.addEventListener(type, input, { capture: true, passive: true });
    }
    if (awayAfterMs > 0) {
      setInterval(() => this.check(), Math.max(250, Math.min(CHECK_EVERY_MS, awayAfterMs / 3)));
    }
  }

  /** By hand: it stays so until changed by hand (away by itself only from available). */
  set(status) {
    this.auto = false;
    this.change(status);
  }

  async check() {
    let idle = null;
    try {
      idle = await this.desktopIdleMs();
    } catch {
      idle = null;
    }
    // The page's own input counts too: a browser has nothing else, and the desktop's idle
    // time can lag behind a click in this window.
    const own = Date.now() - this.lastInput;
    idle = idle === null || idle === undefined ? own : Math.min(idle, own);
    if (this.status === 'available' && idle >= this.awayAfterMs) {
      this.auto = true;
      this.change('away');
    } else if (this.auto && idle < this.awayAfterMs) {
      this.auto = false;
      this.change('available');
    }
  }

  change(status) {
    if (status === this.status) return;
    this.status = status;
    this.onChange(status);
  }
}

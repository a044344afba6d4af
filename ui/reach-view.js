// DOM for "Can't see a room?" (the desktop app only): the connectivity doctor's answer, the
// search of this network, and hosts added by address. The findings come from the engine's
// doctor (`lanchat doctor` prints the same ones).

import { $, el, copyButton } from './dom.js';

const MARKS = { ok: '✓', info: '•', warning: '!', problem: '✗' };
const LEVEL_WORDS = { ok: 'fine', info: 'note', warning: 'warning', problem: 'problem' };

export class ReachView {
  constructor() {
    this.tools = $('reach-tools');
    this.offer = $('reach-offer');
    this.doctorButton = $('doctor-button');
    this.doctorOffer = $('doctor-offer');
    this.scanButton = $('scan-button');
    this.scanStatus = $('scan-status');
    this.addForm = $('add-host-form');
    this.addInput = $('add-host-input');
    this.addStatus = $('add-host-status');
    this.added = $('added-hosts');
    this.dialog = $('doctor-dialog');
    this.summary = $('doctor-summary');
    this.findings = $('doctor-findings');
    this.again = $('doctor-again');
  }

  /** Shows the tools; handlers: {doctor(), scan(), add(address), remove(address)}. */
  wire({ doctor, scan, add, remove }) {
    this.tools.hidden = false;
    this.onRemove = remove;
    this.doctorButton.addEventListener('click', doctor);
    this.doctorOffer.addEventListener('click', doctor);
    this.again.addEventListener('click', doctor);
    this.scanButton.addEventListener('click', scan);
    this.addForm.addEventListener('submit', (e) => {
      e.preventDefault();
      const address = this.addInput.value.trim();
      if (address) add(address);
    });
  }

  /** Offers the doctor by itself (the list stayed empty), or stops offering it. */
  offerDoctor(on) {
    this.offer.hidden = !on;
  }

  // ---- the doctor ----

  doctorRunning() {
    this.summary.textContent = 'Checking this computer and the network…';
    this.summary.className = 'doctor-summary';
    this.findings.replaceChildren();
    this.again.disabled = true;
    if (!this.dialog.open) this.dialog.showModal();
  }

  /** report: {summary, findings: [{level, topic, title, detail, fix}], ms} */
  doctorReport(report) {
    this.again.disabled = false;
    const worst = report.findings.some((f) => f.level === 'problem')
      ? 'problem'
      : report.findings.some((f) => f.level === 'warning') ? 'warning' : 'ok';
    this.summary.className = `doctor-summary ${worst}`;
    this.summary.textContent = `${report.summary} (checked in ${(report.ms / 1000).toFixed(1)} s)`;
    const items = report.findings.map((f) => {
      const item = el('li', `finding ${f.level}`);
      const mark = el('span', 'mark', MARKS[f.level] ?? '•');
      mark.setAttribute('aria-label', LEVEL_WORDS[f.level] ?? f.level);
      const body = el('div', 'finding-body');
      body.append(el('strong', 'finding-title', f.title));
      if (f.detail) {
        for (const line of f.detail.split('\n')) body.append(el('p', 'muted', line));
      }
      if (f.fix) body.append(fixLine(f.fix));
      item.append(mark, body);
      return item;
    });
    this.findings.replaceChildren(...items);
  }

  doctorFailed(message) {
    this.again.disabled = false;
    this.summary.className = 'doctor-summary problem';
    this.summary.textContent = `The checks could not run: ${message}`;
  }

  // ---- scan and added hosts ----

  scanning(on) {
    this.scanButton.disabled = on;
    if (on) this.scanStatus.textContent = 'Asking every address of this network…';
  }

  /** result: {hosts, probed, subnets, ms} */
  scanned({ hosts, probed, subnets, ms }) {
    const found = hosts === 1 ? '1 LAN Chat host' : `${hosts} LAN Chat hosts`;
    this.scanStatus.textContent = `${found} found: ${probed} addresses of ${subnets.join(', ') || 'no network'} asked in ${(ms / 1000).toFixed(1)} s.`;
  }

  scanFailed(message) {
    this.scanStatus.textContent = `Could not search: ${message}`;
  }

  /** view: {address, answer: {Ok: {name, at, rooms}} | {Err: why}} */
  hostAdded({ address, answer }) {
    this.addInput.value = '';
    if (answer.Ok) {
      const rooms = answer.Ok.rooms.length ? answer.Ok.rooms.join(', ') : 'no rooms yet';
      this.addStatus.textContent = `Added ${address}: ${answer.Ok.name} answers at ${answer.Ok.at} (${rooms}).`;
    } else {
      this.addStatus.textContent = `Added ${address}, but it does not answer now (${answer.Err}); its rooms are listed when it does.`;
    }
  }

  addFailed(message) {
    this.addStatus.textContent = message;
  }

  /** The hosts added so far, each with a way to remove it. */
  addedHosts(list) {
    const items = list.map((address) => {
      const item = el('li', 'added-host', address);
      const remove = el('button', 'ghost small', 'Remove');
      remove.type = 'button';
      remove.setAttribute('aria-label', `Remove ${address}`);
      remove.addEventListener('click', () => this.onRemove(address));
      item.append(' ', remove);
      return item;
    });
    this.added.replaceChildren(...items);
  }
}

/** A fix in words; each `command` in it set apart, ready to copy. */
function fixLine(fix) {
  const line = el('p', 'fix');
  fix.split('`').forEach((part, i) => {
    if (i % 2 === 0) {
      line.append(part);
    } else {
      line.append(el('code', 'command', part), ' ', copyButton(part, 'the command'));
    }
  });
  return line;
}

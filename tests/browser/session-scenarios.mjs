// The browser's session (ui/session.js) against the scenarios it shares with the engine's
// (tests/scenarios/session.json): every input of every step, every output in order.
//
//   node session-scenarios.mjs
//
// Prints "N scenarios, M steps, all as specified"; exits non-zero at the first difference.
import { readFileSync } from 'node:fs';
import { Session } from '../../ui/session.js';

const doc = JSON.parse(readFileSync(new URL('../scenarios/session.json', import.meta.url)));

/** JSON with sorted keys, so objects compare whatever order their keys were built in. */
function canonical(value) {
  if (Array.isArray(value)) return value.map(canonical);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.keys(value).sort().map((k) => [k, canonical(value[k])]));
  }
  return value;
}

function run(session, step, clock) {
  if ('connect' in step) return session.connected(step.connect);
  if ('host' in step) return session.frame(structuredClone(step.host), clock.now);
  if ('request' in step) {
    const { id, ...request } = step.request;
    try {
      return session.request(id, request);
    } catch (e) {
      return [{ error: e.code }];
    }
  }
  if ('typing' in step) return session.typing(step.typing);
  if ('status' in step) return session.setStatus(step.status);
  if ('proof' in step) return session.joinWithProof(step.proof, step.host_tag);
  if ('identified' in step) return session.identified(step.identified.key, step.identified.sig);
  if ('disconnect' in step) {
    session.disconnected();
    return [];
  }
  if ('advance_ms' in step) {
    clock.now += step.advance_ms;
    return session.wake(clock.now);
  }
  if ('leave' in step) return session.leave(step.leave);
  throw new Error(`unknown step ${JSON.stringify(step)}`);
}

let steps = 0;
for (const scenario of doc.scenarios) {
  const settings = { ...doc.defaults, ...(scenario.session || {}) };
  const session = new Session({
    room: settings.room,
    nick: settings.nick,
    session: settings.session,
    locked: settings.locked,
    bound: settings.bound,
    identify: settings.identify,
    client: settings.client,
    outboxLimit: settings.outbox_limit,
  });
  const clock = { now: 1_000_000 };
  scenario.steps.forEach((step, i) => {
    const got = JSON.stringify(canonical(run(session, step, clock)));
    const expected = JSON.stringify(canonical(step.expect || []));
    if (got !== expected) {
      console.error(`scenario "${scenario.name}", step ${i}: ${JSON.stringify(step)}`);
      console.error(`  expected ${expected}`);
      console.error(`  got      ${got}`);
      process.exit(1);
    }
    steps += 1;
  });
}
console.log(`${doc.scenarios.length} scenarios, ${steps} steps, all as specified`);

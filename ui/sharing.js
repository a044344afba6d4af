// Sharing files with the room and saving shared ones: picked, dropped or pasted files go
// to the room on screen (or privately to the person picked), each with a progress row and
// Cancel; saving checks and keeps where the file went.

/** Wires the file buttons and drops; returns `saveFile(ev, say)` for file cards. */
export function wireSharing({ state, view, transport, message }) {
  async function shareFiles(files) {
    if (!state.chat || !files.length) return;
    // To the room they were given to, whichever is shown by the time each one goes.
    const room = state.chat.id;
    for (const file of files) {
      const transfer = `t${++state.transfers}`;
      const row = view.transfer(file.name, 'Sending', () => transport.cancelTransfer(transfer));
      try {
        const sent = await transport.shareFile(
          file,
          state.privateTo,
          (done, total) => row.progress(done, total),
          transfer,
          room,
        );
        if (sent) row.end();
        else row.fail(`Cancelled: ${file.name} was not shared`);
      } catch (e) {
        row.fail(`Cannot share ${file.name}: ${message(e)}`);
      }
    }
  }

  async function saveFile(ev, say) {
    if (!transport.canShowInFolder) {
      // The browser downloads it itself, with its own progress.
      await transport.saveFile(ev).catch((e) => say(`Cannot save: ${message(e)}`, true));
      say('Saving in your browser’s downloads', true);
      return;
    }
    const transfer = `t${++state.transfers}`;
    const row = view.transfer(ev.name, 'Saving', () => transport.cancelTransfer(transfer));
    say('Saving…');
    try {
      const where = await transport.saveFile(ev, (done, total) => row.progress(done, total), transfer);
      row.end();
      if (where) say(`Saved as ${where}`, true, where);
      else say('Cancelled', true);
    } catch (e) {
      row.fail(`Cannot save ${ev.name}: ${message(e)}`);
      say('Not saved', true);
    }
  }

  view.onShareFile(async () => {
    if (!state.chat) return;
    shareFiles(await transport.pickFiles());
  });
  view.onPasteFiles(async (files) => {
    try {
      shareFiles(await Promise.all(files.map((f) => transport.stashPasted(f))));
    } catch (e) {
      view.system(`Cannot share what was pasted: ${message(e)}`);
    }
  });
  transport.onFilesDropped((files) => shareFiles(files));
  window.addEventListener('dragover', (e) => e.preventDefault());
  window.addEventListener('drop', (e) => {
    e.preventDefault();
    if (!window.__TAURI__) shareFiles([...(e.dataTransfer?.files || [])]);
  });

  return { saveFile };
}

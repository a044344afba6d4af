//! Reading a locked room's passphrase without it showing up anywhere: from the environment,
//! typed at a terminal without echo, or the first line of a pipe.

use tokio::io::AsyncReadExt;

/// The passphrase from LANCHAT_PASSPHRASE, or else typed at the terminal (not echoed), or
/// else the first line of stdin.
pub async fn read_passphrase() -> Result<String, String> {
    if let Ok(passphrase) = std::env::var(PASSPHRASE_ENV) {
        return Ok(passphrase);
    }
    if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        // Typed at a terminal: not echoed.
        let typed = tokio::task::spawn_blocking(|| rpassword::prompt_password("Passphrase: "))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("cannot read the passphrase: {e}"))?;
        if typed.is_empty() {
            return Err("--passphrase: no passphrase given".into());
        }
        return Ok(typed);
    }
    // Byte by byte, unbuffered: for `join`, the lines after it are messages to send.
    let mut bytes = Vec::new();
    let mut stdin = tokio::io::stdin();
    let mut byte = [0u8; 1];
    while bytes.len() <= lanchat::lock::MAX_PASSPHRASE_BYTES + 2 {
        match stdin.read(&mut byte).await {
            Ok(0) => break,
            Ok(_) if byte[0] == b'\n' => break,
            Ok(_) => bytes.push(byte[0]),
            Err(e) => return Err(format!("cannot read the passphrase: {e}")),
        }
    }
    let line = String::from_utf8(bytes).map_err(|_| "the passphrase is not valid UTF-8")?;
    if line.trim_end_matches(['\r', '\n']).is_empty() {
        return Err(format!(
            "--passphrase: no passphrase given (set {PASSPHRASE_ENV} or type it on the first line)"
        ));
    }
    Ok(line)
}

pub const PASSPHRASE_ENV: &str = "LANCHAT_PASSPHRASE";

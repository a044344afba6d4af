//! The errors commands return to the page, serialized as `{code, message}`.

use lanchat::client::ClientError;
use lanchat::config::ConfigError;
use lanchat::discovery::DiscoveryError;
use lanchat::hosting::HostingError;
use lanchat::protocol::{self, AddressError};
use serde::ser::SerializeStruct;

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("{0}")]
    Invalid(#[from] protocol::Invalid),
    #[error("you are not in a room")]
    NotInRoom,
    #[error("you are already hosting \"{0}\"; close it first")]
    AlreadyHosting(String),
    #[error("that room is no longer on the network")]
    RoomGone,
    #[error("room discovery is not available here: {0}")]
    Discovery(#[from] DiscoveryError),
    #[error("cannot host: {0}")]
    Host(#[from] HostingError),
    #[error("{0}")]
    Address(#[from] AddressError),
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Client(#[from] ClientError),
    #[error("{0}")]
    Transfer(#[from] lanchat::client::TransferError),
    #[error("there is no Downloads folder to save into")]
    NoDownloads,
    #[error("only files this app saved can be shown in their folder")]
    NotSaved,
    #[error("cannot open the folder: {0}")]
    Open(String),
    #[error("cannot open the link: {0}")]
    Link(String),
    #[error("cannot pass the room's events to the window: {0}")]
    Relay(String),
    #[error("cannot take the pasted file: {0}")]
    Pasted(String),
    #[error("cannot change starting at login: {0}")]
    Autostart(String),
    #[error("cannot show a notification: {0}")]
    Notify(String),
    #[error("{0}")]
    AddedHosts(#[from] lanchat::reach::AddedHostsError),
}

impl CommandError {
    /// A stable, machine-readable code for the page.
    pub fn code(&self) -> String {
        match self {
            CommandError::Invalid(invalid) => serde_json::to_value(invalid.code)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_else(|| "invalid".into()),
            CommandError::NotInRoom => "not_in_room".into(),
            CommandError::AlreadyHosting(_) => "already_hosting".into(),
            CommandError::RoomGone => "room_gone".into(),
            CommandError::Transfer(_) => "transfer_failed".into(),
            CommandError::NoDownloads => "no_downloads".into(),
            CommandError::NotSaved => "not_saved".into(),
            CommandError::Open(_) | CommandError::Link(_) => "cannot_open".into(),
            CommandError::Relay(_) => "relay_failed".into(),
            CommandError::Pasted(_) => "cannot_paste".into(),
            CommandError::Autostart(_) => "autostart".into(),
            CommandError::Notify(_) => "cannot_notify".into(),
            CommandError::AddedHosts(lanchat::reach::AddedHostsError::NotAnAddress(_)) => {
                "bad_address".into()
            }
            CommandError::AddedHosts(_) => "cannot_add_host".into(),
            CommandError::Discovery(_) => "discovery_unavailable".into(),
            CommandError::Host(_) => "cannot_host".into(),
            CommandError::Address(_) => "bad_address".into(),
            CommandError::Config(_) => "config".into(),
            CommandError::Client(ClientError::OutboxFull(_)) => "outbox_full".into(),
            CommandError::Client(ClientError::Stopped) => "not_connected".into(),
            CommandError::Client(ClientError::Invalid(invalid)) => {
                CommandError::Invalid(invalid.clone()).code()
            }
        }
    }
}

impl serde::Serialize for CommandError {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("CommandError", 2)?;
        s.serialize_field("code", &self.code())?;
        s.serialize_field("message", &self.to_string())?;
        s.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn errors_reach_the_page_as_code_and_message() {
        let nick = protocol::validate_nick("").unwrap_err();
        assert_eq!(
            serde_json::to_value(CommandError::from(nick)).unwrap(),
            json!({"code": "nick_invalid", "message": "the nickname is empty"})
        );
        assert_eq!(
            serde_json::to_value(CommandError::AlreadyHosting("Tokyo".into())).unwrap(),
            json!({"code": "already_hosting",
                   "message": "you are already hosting \"Tokyo\"; close it first"})
        );
        assert_eq!(
            serde_json::to_value(CommandError::NotInRoom).unwrap()["code"],
            "not_in_room"
        );
    }
}

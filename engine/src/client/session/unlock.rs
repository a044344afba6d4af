//! A locked room's key exchange and a browser's key proof, as the session sees them: after
//! the host's `hello`, ask the driver for a signature (`identify`) and for the room's
//! `challenge`; join with the driver's answer; accept only a welcome carrying the host's
//! proof that it knows the room key.

use super::{ClientFrame, CloseReason, Ended, Output, Phase, Session};
use crate::protocol::{self, Welcome};

/// Where the exchange is on this connection.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Unlock {
    None,
    /// Waiting for the driver's signature over this nonce.
    Signing {
        nonce: String,
    },
    Asked {
        nonce: String,
    },
    Expecting {
        host_tag: String,
    },
}

impl Session {
    /// The host's `hello`: its nonce is what the key proof and the exchange are bound to.
    pub(super) fn hello(&mut self, nonce: String) -> Vec<Output> {
        match &self.phase {
            Phase::Joining { .. } if self.config.identify => {
                self.unlock = Unlock::Signing {
                    nonce: nonce.clone(),
                };
                vec![Output::Identify { nonce }]
            }
            Phase::Joining { .. } if self.config.locked => self.after_hello(nonce),
            _ => Vec::new(),
        }
    }

    /// The host's `challenge`: prove the room key (or, for a room that is not locked after
    /// all, join as anyone may).
    pub(super) fn challenge(
        &mut self,
        id: String,
        salt: Option<String>,
        share: Option<String>,
    ) -> Vec<Output> {
        let Phase::Joining { join_id } = &self.phase else {
            return Vec::new();
        };
        let Unlock::Asked { nonce } = &self.unlock else {
            return Vec::new();
        };
        match (id == *join_id, salt, share) {
            (true, Some(salt), Some(share)) => vec![Output::Prove(super::Challenge {
                nonce: nonce.clone(),
                salt,
                share,
            })],
            (true, _, _) => {
                self.unlock = Unlock::None;
                vec![self.join_frame(None)]
            }
            (false, _, _) => Vec::new(),
        }
    }

    /// The end of the connection, if the welcome lacks the host's proof it was asked for.
    pub(super) fn unproven(&self, welcome: &Welcome) -> Option<Output> {
        match &self.unlock {
            Unlock::Expecting { host_tag } if welcome.unlock.as_ref() != Some(host_tag) => {
                Some(Output::End(Ended::Final(CloseReason::HostUnproven)))
            }
            _ => None,
        }
    }

    /// The client's signature over the hello's nonce: `identify`, then the join (or, for a
    /// locked room, the request for its challenge).
    pub fn identified(&mut self, key: String, sig: String) -> Vec<Output> {
        let Phase::Joining { .. } = self.phase else {
            return Vec::new();
        };
        let Unlock::Signing { nonce } = std::mem::replace(&mut self.unlock, Unlock::None) else {
            return Vec::new();
        };
        let mut out = vec![Output::Send(ClientFrame::Identify { key, sig })];
        out.extend(self.after_hello(nonce));
        out
    }

    /// What follows the hello: the request for a locked room's challenge, or the join.
    fn after_hello(&mut self, nonce: String) -> Vec<Output> {
        let Phase::Joining { join_id } = &self.phase else {
            return Vec::new();
        };
        if !self.config.locked {
            return vec![self.join_frame(None)];
        }
        let unlock = ClientFrame::Unlock {
            id: join_id.clone(),
            room: self.config.room.clone(),
            bound: self.config.bound,
        };
        self.unlock = Unlock::Asked { nonce };
        vec![Output::Send(unlock)]
    }

    /// The join of a locked room, with the client's answer to the challenge and the tag
    /// the host must show in its welcome.
    pub fn join_with_proof(
        &mut self,
        answer: protocol::UnlockAnswer,
        host_tag: String,
    ) -> Vec<Output> {
        match self.phase {
            Phase::Joining { .. } => {
                self.unlock = Unlock::Expecting { host_tag };
                vec![self.join_frame(Some(answer))]
            }
            _ => Vec::new(),
        }
    }
}

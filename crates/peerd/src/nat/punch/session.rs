//! One punch's probe exchange, without sockets: what to send, and when the
//! path is proven, for each probe that arrives. The callee switches first,
//! on the caller's confirmation, so that the caller's first direct QUIC
//! packets already find it listening on the new path.

use std::net::SocketAddr;

use crate::paths::{Probe, Token};

/// Which end of the punch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// The node that dialed through the relay and asked for the punch: it
    /// sends hellos.
    Caller,
    /// The node asked: it sent openers, and answers.
    Callee,
}

/// What to do for a probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    Send(SocketAddr, Probe),
    /// The path to this address works both ways: move the connection.
    Switch(SocketAddr),
}

#[derive(Debug)]
pub(crate) struct Session {
    role: Role,
    /// Ours: a probe that carries it comes from the peer.
    own: Token,
    /// The peer's: every probe we send carries it.
    peer: Token,
    switched: Option<SocketAddr>,
}

impl Session {
    pub(crate) fn new(role: Role, own: Token, peer: Token) -> Self {
        Self {
            role,
            own,
            peer,
            switched: None,
        }
    }

    /// The steps for `probe` from `from`; probes with another token, or
    /// out of turn, are ignored.
    pub(crate) fn on_probe(&mut self, from: SocketAddr, probe: Probe) -> Vec<Step> {
        let reply = |probe: fn(Token) -> Probe| Step::Send(from, probe(self.peer));
        match (self.role, probe) {
            (Role::Callee, Probe::Hello(token)) if token == self.own => vec![reply(Probe::Ack)],
            (Role::Caller, Probe::Ack(token)) if token == self.own => vec![reply(Probe::Confirm)],
            (Role::Callee, Probe::Confirm(token)) if token == self.own => {
                let confirm = reply(Probe::Confirm);
                match self.switched.replace(from) {
                    None => vec![Step::Switch(from), confirm],
                    Some(first) => {
                        self.switched = Some(first);
                        vec![confirm]
                    }
                }
            }
            (Role::Caller, Probe::Confirm(token))
                if token == self.own && self.switched.is_none() =>
            {
                self.switched = Some(from);
                vec![Step::Switch(from)]
            }
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Token = [1; 16];
    const B: Token = [2; 16];

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([203, 0, 113, 2], port))
    }

    #[test]
    fn a_round_trip_moves_the_callee_first_then_the_caller() {
        let mut caller = Session::new(Role::Caller, A, B);
        let mut callee = Session::new(Role::Callee, B, A);
        let (caller_at, callee_at) = (addr(1), addr(2));
        assert_eq!(
            callee.on_probe(caller_at, Probe::Hello(B)),
            [Step::Send(caller_at, Probe::Ack(A))]
        );
        assert_eq!(
            caller.on_probe(callee_at, Probe::Ack(A)),
            [Step::Send(callee_at, Probe::Confirm(B))]
        );
        assert_eq!(
            callee.on_probe(caller_at, Probe::Confirm(B)),
            [
                Step::Switch(caller_at),
                Step::Send(caller_at, Probe::Confirm(A))
            ]
        );
        assert_eq!(
            caller.on_probe(callee_at, Probe::Confirm(A)),
            [Step::Switch(callee_at)]
        );
        assert!(caller.on_probe(callee_at, Probe::Confirm(A)).is_empty());
        assert_eq!(
            callee.on_probe(addr(3), Probe::Confirm(B)),
            [Step::Send(addr(3), Probe::Confirm(A))],
            "a later path does not move the callee again"
        );
    }

    #[test]
    fn probes_with_a_foreign_token_or_out_of_turn_are_ignored() {
        let mut caller = Session::new(Role::Caller, A, B);
        let mut callee = Session::new(Role::Callee, B, A);
        let stranger = [9; 16];
        assert!(callee.on_probe(addr(1), Probe::Hello(stranger)).is_empty());
        assert!(callee.on_probe(addr(1), Probe::Ack(B)).is_empty());
        assert!(caller.on_probe(addr(1), Probe::Hello(A)).is_empty());
        assert!(caller.on_probe(addr(1), Probe::Ack(stranger)).is_empty());
    }
}

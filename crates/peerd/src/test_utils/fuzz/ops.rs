//! What the stateful RPC target does, decoded from fuzz input: a short
//! program of stream operations a caller could perform, well-formed or not.

/// Streams the program can use at once.
pub(super) const STREAMS: usize = 4;
/// Operations per input at most, so every input runs in bounded time.
const MAX_OPS: usize = 48;

/// Methods a header may name: every pattern, and one that does not exist.
pub(super) const METHODS: [&str; 7] = [
    "peerd.node.v1.Node/Ping",
    "peerd.node.v1.Node/Echo",
    "peerd.node.v1.Node/Info",
    "fuzz.v1.Patterns/Count",
    "fuzz.v1.Patterns/Sum",
    "fuzz.v1.Patterns/Double",
    "fuzz.v1.Patterns/Missing",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Op {
    Open,
    /// An operation on the stream in this slot, if one is open there.
    On(usize, StreamOp),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum StreamOp {
    /// A well-formed header naming `METHODS[method]`.
    Header {
        method: usize,
        timeout_ms: u8,
    },
    /// A well-formed message frame holding a `PingRequest` with `nonce`.
    Message {
        nonce: u8,
    },
    /// Any bytes at all.
    Raw(Vec<u8>),
    Finish,
    Reset(u8),
    Stop(u8),
    /// Reads whatever has arrived, briefly.
    Read,
}

pub(super) fn parse(data: &[u8]) -> Vec<Op> {
    let mut input = data.iter().copied();
    let mut next = move || input.next();
    let mut ops = Vec::new();
    while ops.len() < MAX_OPS {
        let Some(op) = parse_one(&mut next) else {
            break;
        };
        ops.push(op);
    }
    ops
}

fn parse_one(next: &mut impl FnMut() -> Option<u8>) -> Option<Op> {
    let code = next()?;
    let stream = next()? as usize % STREAMS;
    let op = match code % 8 {
        0 => return Some(Op::Open),
        1 => StreamOp::Header {
            method: next()? as usize % METHODS.len(),
            timeout_ms: next()?,
        },
        2 => StreamOp::Message { nonce: next()? },
        3 => {
            let len = next()? as usize;
            StreamOp::Raw((0..len).map_while(|_| next()).collect())
        }
        4 => StreamOp::Finish,
        5 => StreamOp::Reset(next()?),
        6 => StreamOp::Stop(next()?),
        _ => StreamOp::Read,
    };
    Some(Op::On(stream, op))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_program_decodes_op_by_op_and_stops_at_the_end_of_input() {
        let ops = parse(&[0, 0, 1, 1, 3, 20, 3, 2, 2, b'a', b'b', 4, 3]);
        assert_eq!(
            ops,
            [
                Op::Open,
                Op::On(
                    1,
                    StreamOp::Header {
                        method: 3,
                        timeout_ms: 20
                    }
                ),
                Op::On(2, StreamOp::Raw(b"ab".to_vec())),
                Op::On(3, StreamOp::Finish),
            ]
        );
    }

    #[test]
    fn programs_are_bounded() {
        assert_eq!(parse(&[0; 1000]).len(), MAX_OPS);
    }
}

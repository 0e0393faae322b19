//! What the caller-side RPC target does, decoded from fuzz input: the call
//! the caller makes, and the steps the callee answers it with, well-formed
//! or not.

/// Answer steps per input at most, so every input runs in bounded time.
const MAX_STEPS: usize = 24;
/// Longest status message, in bytes of input.
const MAX_STATUS_TEXT: u8 = 8;

/// What the methods the callee answers by the script start with.
pub(super) const SCRIPTED_METHODS: &str = "fuzz.v1.Script/";

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Script {
    pub pattern: Pattern,
    /// Requests a client-streaming or bidi caller sends, 0 to 3.
    pub requests: u8,
    pub answer: Vec<Step>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Pattern {
    Unary,
    ServerStreaming,
    ClientStreaming,
    Bidi,
}

impl Pattern {
    pub(crate) fn method(self) -> &'static str {
        match self {
            Pattern::Unary => "fuzz.v1.Script/Unary",
            Pattern::ServerStreaming => "fuzz.v1.Script/ServerStreaming",
            Pattern::ClientStreaming => "fuzz.v1.Script/ClientStreaming",
            Pattern::Bidi => "fuzz.v1.Script/Bidi",
        }
    }
}

/// One thing the callee does on the call's stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Step {
    /// A well-formed message frame holding a `PingResponse` with `nonce`.
    Message {
        nonce: u8,
    },
    /// A well-formed status frame; codes past 16 are not gRPC's.
    Status {
        code: u8,
        message: String,
    },
    /// A request header, which no callee may send.
    Header,
    /// Any bytes at all.
    Raw(Vec<u8>),
    Finish,
    Reset(u8),
    Stop(u8),
    /// Reads whatever the caller has sent, briefly.
    Read,
    /// Waits this many milliseconds.
    Pause(u8),
}

/// `data[0]` picks the pattern (low 2 bits) and the requests (next 2 bits);
/// the rest are steps.
pub(super) fn parse(data: &[u8]) -> Script {
    let mut input = data.iter().copied();
    let call = input.next().unwrap_or(0);
    let mut next = move || input.next();
    let answer = std::iter::from_fn(|| parse_step(&mut next))
        .take(MAX_STEPS)
        .collect();
    let patterns = [
        Pattern::Unary,
        Pattern::ServerStreaming,
        Pattern::ClientStreaming,
        Pattern::Bidi,
    ];
    Script {
        pattern: patterns[usize::from(call % 4)],
        requests: call / 4 % 4,
        answer,
    }
}

fn parse_step(next: &mut impl FnMut() -> Option<u8>) -> Option<Step> {
    Some(match next()? % 9 {
        0 => Step::Message { nonce: next()? },
        1 => Step::Status {
            code: next()? % 21,
            message: text(next)?,
        },
        2 => Step::Header,
        3 => {
            let len = next()?;
            Step::Raw((0..len).map_while(|_| next()).collect())
        }
        4 => Step::Finish,
        5 => Step::Reset(next()?),
        6 => Step::Stop(next()?),
        7 => Step::Read,
        _ => Step::Pause(next()? % 32),
    })
}

fn text(next: &mut impl FnMut() -> Option<u8>) -> Option<String> {
    let len = next()? % (MAX_STATUS_TEXT + 1);
    let bytes: Vec<u8> = (0..len).map_while(|_| next()).collect();
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_script_decodes_the_call_then_step_by_step_to_the_end_of_input() {
        let script = parse(&[14, 0, 7, 1, 5, 2, b'n', b'o', 3, 2, 9, 9, 4, 8, 40, 5]);
        assert_eq!(script.pattern, Pattern::ClientStreaming);
        assert_eq!(script.requests, 3);
        assert_eq!(
            script.answer,
            [
                Step::Message { nonce: 7 },
                Step::Status {
                    code: 5,
                    message: "no".into()
                },
                Step::Raw(vec![9, 9]),
                Step::Finish,
                Step::Pause(8),
            ]
        );
    }

    #[test]
    fn scripts_are_bounded() {
        assert_eq!(parse(&[0; 1000]).answer.len(), MAX_STEPS);
        assert_eq!(parse(&[]).pattern, Pattern::Unary);
    }

    #[test]
    fn every_pattern_names_a_scripted_method() {
        for call in 0..4 {
            let method = parse(&[call]).pattern.method();
            assert!(method.starts_with(SCRIPTED_METHODS), "{method}");
        }
    }
}

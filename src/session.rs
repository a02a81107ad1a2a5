//! What one conversation may do (SPEC §7, §11): the token gate, the guard against browsers, and
//! where the conversation stands in the language-server lifecycle.
//!
//! A TCP conversation on a server with a token starts locked: until `authenticate` succeeds,
//! every other call is answered `-32001` and notifications are dropped unrun. Three wrong tokens
//! end the conversation. A TCP conversation whose first line looks like HTTP ends at once,
//! unanswered, so that a web page cannot drive a local groupd through a browser. stdio needs no
//! token: the process that started groupd owns it. After `shutdown` only `exit` runs; `exit`
//! ends the conversation (and a stdio process, with a status that says whether `shutdown` came
//! first).

use std::sync::Arc;

use crate::auth::Token;

/// Wrong tokens a conversation may offer; the last one closes it.
pub const MAX_AUTH_FAILURES: u8 = 3;

/// How a conversation had to end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// [`MAX_AUTH_FAILURES`] wrong tokens.
    AuthFailures,
    /// The first line looked like an HTTP request; nothing is answered.
    LooksLikeHttp,
    /// The peer sent `exit` (SPEC §11); `after_shutdown` when `shutdown` came before it.
    Exit { after_shutdown: bool },
}

/// One conversation's standing.
#[derive(Debug)]
pub struct Session {
    token: Option<Arc<Token>>,
    unlocked: bool,
    failures: u8,
    /// Whether the first line is still to be screened for HTTP.
    screen_first_line: bool,
    /// Set by `shutdown`: from then on only `exit` runs.
    shut_down: bool,
    ending: Option<Ending>,
}

/// The first line of an HTTP request, or a header a browser sends.
const HTTP_PREFIXES: &[&[u8]] = &[
    b"GET ",
    b"POST ",
    b"PUT ",
    b"DELETE ",
    b"HEAD ",
    b"OPTIONS ",
    b"CONNECT ",
    b"PATCH ",
    b"TRACE ",
];

impl Session {
    /// A conversation its peer owns (stdio), or one already authenticated elsewhere (HTTP).
    pub fn trusted() -> Session {
        Session {
            token: None,
            unlocked: true,
            failures: 0,
            screen_first_line: false,
            shut_down: false,
            ending: None,
        }
    }

    /// A TCP conversation: locked when the server has a token, and screened for HTTP.
    pub fn tcp(token: Option<Arc<Token>>) -> Session {
        Session {
            unlocked: token.is_none(),
            token,
            screen_first_line: true,
            ..Session::trusted()
        }
    }

    /// Set once the conversation must end.
    pub fn ending(&self) -> Option<Ending> {
        self.ending
    }

    /// Whether calls other than `authenticate` may run.
    pub fn unlocked(&self) -> bool {
        self.unlocked
    }

    /// Whether `shutdown` was called: requests other than `exit` are refused from now on.
    pub fn is_shut_down(&self) -> bool {
        self.shut_down
    }

    /// `shutdown` (SPEC §11).
    pub fn shut_down(&mut self) {
        self.shut_down = true;
    }

    /// `exit` (SPEC §11): the conversation ends once the answers already due are written.
    pub fn exit(&mut self) {
        self.ending = Some(Ending::Exit {
            after_shutdown: self.shut_down,
        });
    }

    /// Checks a candidate token. Wrong ones count towards [`MAX_AUTH_FAILURES`].
    pub fn authenticate(&mut self, candidate: &str) -> bool {
        let Some(token) = &self.token else {
            return true;
        };
        if token.matches(candidate.as_bytes()) {
            self.unlocked = true;
            return true;
        }
        self.failures += 1;
        if self.failures >= MAX_AUTH_FAILURES {
            self.ending = Some(Ending::AuthFailures);
        }
        false
    }

    /// Screens the conversation's first line; true when it looks like HTTP and the
    /// conversation must end unanswered.
    pub fn rejects_first_line(&mut self, line: &[u8]) -> bool {
        if !std::mem::take(&mut self.screen_first_line) {
            return false;
        }
        let http = HTTP_PREFIXES.iter().any(|p| line.starts_with(p))
            || line
                .get(..5)
                .is_some_and(|h| h.eq_ignore_ascii_case(b"host:"));
        if http {
            self.ending = Some(Ending::LooksLikeHttp);
        }
        http
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_wrong_tokens_end_the_conversation() {
        let mut s = Session::tcp(Token::new(b"t").map(Arc::new));
        assert!(!s.unlocked());
        assert!(!s.authenticate("x") && !s.authenticate("y"));
        assert_eq!(s.ending(), None);
        assert!(!s.authenticate("z"));
        assert_eq!(s.ending(), Some(Ending::AuthFailures));
    }

    #[test]
    fn the_right_token_unlocks() {
        let mut s = Session::tcp(Token::new(b"t").map(Arc::new));
        assert!(s.authenticate("t") && s.unlocked());
    }

    #[test]
    fn only_the_first_line_is_screened_for_http() {
        let mut s = Session::tcp(None);
        assert!(!s.rejects_first_line(b"{\"jsonrpc\":\"2.0\"}"));
        assert!(!s.rejects_first_line(b"GET / HTTP/1.1"));
        assert!(Session::tcp(None).rejects_first_line(b"GET / HTTP/1.1"));
        assert!(Session::tcp(None).rejects_first_line(b"host: localhost"));
        assert!(!Session::trusted().rejects_first_line(b"POST / HTTP/1.1"));
    }

    #[test]
    fn exit_says_whether_shutdown_came_first() {
        let mut s = Session::trusted();
        s.exit();
        assert_eq!(
            s.ending(),
            Some(Ending::Exit {
                after_shutdown: false
            })
        );
        let mut s = Session::trusted();
        s.shut_down();
        assert!(s.is_shut_down() && s.ending().is_none());
        s.exit();
        assert_eq!(
            s.ending(),
            Some(Ending::Exit {
                after_shutdown: true
            })
        );
    }
}

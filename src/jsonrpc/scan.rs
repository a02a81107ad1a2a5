//! One pass over the request shape nearly every client sends, without serde.
//!
//! `{"jsonrpc":"2.0","method":"getGroup","id":7,"params":["7"]}`: the four members in any
//! order, each at most once; strings without escapes; integer ids; `params` absent, `null`, an
//! array of such strings, integers and `null`, or an object whose keys are such strings and whose
//! values are such scalars (`{"group_id":7}`, the shape of half of Kanboard's examples). Anything
//! else (an escape, a float, an unknown member, a nested value, an error of any kind) is `None`,
//! and the caller takes the general path,
//! which also words the error. So this module decides nothing: it only makes the common case
//! cheap. A profile of `getGroup` put serde's envelope and params parsing, with the nesting
//! check before it, at about a fifth of the server's time.

use std::borrow::Cow;

use super::{Json, Params, Request};

/// The request `text` holds, when it has the common shape and is valid JSON.
pub(super) fn request(text: &str) -> Option<Request<'_>> {
    let mut s = Scanner::new(text);
    s.expect(b'{')?;
    let (mut jsonrpc, mut method, mut id, mut params) = (None, None, None, None);
    loop {
        let key = s.string()?;
        s.expect(b':')?;
        let slot = match key {
            "jsonrpc" => &mut jsonrpc,
            "method" => &mut method,
            "id" => &mut id,
            "params" => &mut params,
            _ => return None,
        };
        if slot.is_some() {
            return None;
        }
        *slot = Some(if key == "params" {
            s.params()?
        } else {
            s.scalar()?
        });
        match s.next()? {
            b',' => continue,
            b'}' => break,
            _ => return None,
        }
    }
    if !s.at_end() || jsonrpc != Some("\"2.0\"") {
        return None;
    }
    let method = method?.strip_prefix('"')?.strip_suffix('"')?;
    let params = match params {
        None | Some("null") => Params::None,
        Some(object) if object.starts_with('{') => Params::Named(Json(object)),
        Some(array) => Params::Positional(Json(array)),
    };
    Some(Request {
        id: id.map(Json),
        method: Cow::Borrowed(method),
        params,
    })
}

/// Places the entries of the array `text` into `slots` and counts them, when every entry is a
/// plain string, an integer or `null`.
pub(super) fn array<'a>(text: &'a str, slots: &mut [Option<Json<'a>>]) -> Option<usize> {
    let mut s = Scanner::new(text);
    let entries = s.entries(|i, entry| {
        if let Some(slot) = slots.get_mut(i) {
            *slot = Some(Json(entry));
        }
    })?;
    s.at_end().then_some(entries)
}

/// Shows each member of the object `text` to `member`, in the order written (duplicates
/// included, as serde shows them), when every key is a plain string and every value a plain
/// string, an integer or `null`.
pub(super) fn object<'a>(text: &'a str, member: impl FnMut(&'a str, &'a str)) -> Option<()> {
    let mut s = Scanner::new(text);
    s.members(member)?;
    s.at_end().then_some(())
}

struct Scanner<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Scanner<'a> {
    fn new(text: &'a str) -> Self {
        Scanner { text, at: 0 }
    }

    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes().get(self.at) {
            self.at += 1;
        }
    }

    /// The next byte that is not whitespace, consumed.
    fn next(&mut self) -> Option<u8> {
        self.skip_whitespace();
        let b = *self.bytes().get(self.at)?;
        self.at += 1;
        Some(b)
    }

    fn expect(&mut self, wanted: u8) -> Option<()> {
        (self.next()? == wanted).then_some(())
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_whitespace();
        self.bytes().get(self.at).copied()
    }

    fn at_end(&mut self) -> bool {
        self.skip_whitespace();
        self.at == self.text.len()
    }

    /// A string without escapes or control characters: its content.
    fn string(&mut self) -> Option<&'a str> {
        self.quoted().map(|q| &q[1..q.len() - 1])
    }

    /// A string without escapes or control characters, quotes included.
    fn quoted(&mut self) -> Option<&'a str> {
        self.expect(b'"')?;
        let start = self.at - 1;
        loop {
            match *self.bytes().get(self.at)? {
                b'"' => break,
                b'\\' | 0x00..=0x1f => return None,
                _ => self.at += 1,
            }
        }
        self.at += 1;
        // Both ends are ASCII quotes, so this is a whole `str`.
        self.text.get(start..self.at)
    }

    /// `-`? then `0` or a digit run not starting with `0`, not followed by a fraction or
    /// exponent (those go the general way).
    fn integer(&mut self) -> Option<&'a str> {
        self.skip_whitespace();
        let start = self.at;
        if self.bytes().get(self.at) == Some(&b'-') {
            self.at += 1;
        }
        let digits = self.at;
        while self.bytes().get(self.at).is_some_and(u8::is_ascii_digit) {
            self.at += 1;
        }
        let run = &self.bytes()[digits..self.at];
        if run.is_empty() || (run.len() > 1 && run[0] == b'0') {
            return None;
        }
        if let Some(b'.' | b'e' | b'E') = self.bytes().get(self.at) {
            return None;
        }
        self.text.get(start..self.at)
    }

    fn null(&mut self) -> Option<&'a str> {
        self.skip_whitespace();
        let rest = self.text.get(self.at..)?;
        rest.starts_with("null").then(|| {
            self.at += 4;
            &rest[..4]
        })
    }

    /// A plain string (quotes included), an integer or `null`.
    fn scalar(&mut self) -> Option<&'a str> {
        match self.peek()? {
            b'"' => self.quoted(),
            b'n' => self.null(),
            _ => self.integer(),
        }
    }

    /// `null`, an array of scalars, or an object of scalars: its text.
    fn params(&mut self) -> Option<&'a str> {
        let first = self.peek()?;
        if first == b'n' {
            return self.null();
        }
        let start = self.at;
        if first == b'{' {
            self.members(|_, _| {})?;
        } else {
            self.entries(|_, _| {})?;
        }
        self.text.get(start..self.at)
    }

    /// An object of plain keys and scalars, each member shown to `member`.
    fn members(&mut self, mut member: impl FnMut(&'a str, &'a str)) -> Option<()> {
        self.expect(b'{')?;
        if self.peek()? == b'}' {
            self.at += 1;
            return Some(());
        }
        loop {
            let key = self.string()?;
            self.expect(b':')?;
            member(key, self.scalar()?);
            match self.next()? {
                b',' => continue,
                b'}' => return Some(()),
                _ => return None,
            }
        }
    }

    /// An array of scalars, each shown to `entry` with its index; the number of entries.
    fn entries(&mut self, mut entry: impl FnMut(usize, &'a str)) -> Option<usize> {
        self.expect(b'[')?;
        if self.peek()? == b']' {
            self.at += 1;
            return Some(0);
        }
        let mut count = 0;
        loop {
            entry(count, self.scalar()?);
            count += 1;
            match self.next()? {
                b',' => continue,
                b']' => return Some(count),
                _ => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_documentation_example() {
        let text = r#"{"jsonrpc": "2.0", "method": "getGroup", "id": 1968647622, "params": ["1"]}"#;
        let r = request(text).unwrap();
        assert_eq!(r.id, Some(Json("1968647622")));
        assert_eq!(r.method, "getGroup");
        assert_eq!(r.params, Params::Positional(Json(r#"["1"]"#)));
    }

    #[test]
    fn leaves_everything_unusual_to_the_general_path() {
        for text in [
            r#"{"jsonrpc":"2.0","method":"m","id":1.5}"#,
            r#"{"jsonrpc":"2.0","method":"m","id":01}"#,
            r#"{"jsonrpc":"2.0","method":"m","id":1e3}"#,
            r#"{"jsonrpc":"2.0","method":"m\u0041","id":1}"#,
            r#"{"jsonrpc":"2.0","method":"m","id":1,"id":2}"#,
            r#"{"jsonrpc":"2.0","method":"m","x":1}"#,
            r#"{"jsonrpc":"2.0","method":"m","params":{"name":["a"]}}"#,
            r#"{"jsonrpc":"2.0","method":"m","params":{"n\u0061me":"a"}}"#,
            r#"{"jsonrpc":"2.0","method":"m","params":{"name":"a",}}"#,
            r#"{"jsonrpc":"2.0","method":"m","params":{"name" "a"}}"#,
            r#"{"jsonrpc":"2.0","method":"m","params":{"name":true}}"#,
            r#"{"jsonrpc":"2.0","method":"m","params":[["a"]]}"#,
            r#"{"jsonrpc":"2.0","method":"m","params":[true]}"#,
            r#"{"jsonrpc":"2.0","method":"m","params":[1,]}"#,
            r#"{"jsonrpc":"2.0","method":"m","params":"x"}"#,
            r#"{"jsonrpc":"2.0","method":1}"#,
            r#"{"jsonrpc":"2.0"}"#,
            r#"{"jsonrpc":"1.0","method":"m"}"#,
            r#"{"jsonrpc":"2.0","method":"m"} x"#,
            r#"{"jsonrpc":"2.0","method":"m","id":nul}"#,
            r#"{"jsonrpc":"2.0","method":"m","id":-}"#,
            "{\"jsonrpc\":\"2.0\",\"method\":\"a\tb\"}",
            r#"{"jsonrpc":"2.0","method":"m""#,
            "{}",
        ] {
            assert_eq!(request(text), None, "{text}");
        }
    }

    #[test]
    fn reads_named_params() {
        let text =
            r#"{"jsonrpc":"2.0","method":"getGroup","id":1,"params": { "group_id" : "1" } }"#;
        let r = request(text).unwrap();
        assert_eq!(r.params, Params::Named(Json(r#"{ "group_id" : "1" }"#)));
        let mut members = Vec::new();
        let text = r#"{"name":"Ops","external_id":null,"name":-2}"#;
        assert_eq!(object(text, |k, v| members.push((k, v))), Some(()));
        assert_eq!(
            members,
            [("name", "\"Ops\""), ("external_id", "null"), ("name", "-2")]
        );
        assert_eq!(object("{}", |_, _| {}), Some(()));
        assert_eq!(object(r#"{"a":1} {}"#, |_, _| {}), None);
    }

    #[test]
    fn splits_arrays_of_scalars() {
        let mut slots = [None; 2];
        assert_eq!(array(r#" [ "a" , -3 ,null ] "#, &mut slots), Some(3));
        assert_eq!(slots, [Some(Json("\"a\"")), Some(Json("-3"))]);
        assert_eq!(array("[]", &mut slots), Some(0));
        assert_eq!(array(r#"["a" "b"]"#, &mut slots), None);
        assert_eq!(array(r#"["a"] ["b"]"#, &mut slots), None);
    }
}

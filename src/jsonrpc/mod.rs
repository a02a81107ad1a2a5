//! The JSON-RPC 2.0 envelope: request lines in, response lines out. Knows nothing of groups.
//!
//! Parsing borrows from the request line: ids and params stay raw JSON text ([`Json`]), so an
//! id is echoed exactly as the client wrote it (`1416806551`, `1e3`, a 40-digit integer) and
//! params are decoded once, by the method that knows their types. Responses are written by hand
//! in the member order of SPEC §1 (`jsonrpc`, `id`, then `result` or `error`), compact, one line.

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;

use crate::limits::MAX_NESTING_DEPTH;

mod scan;

/// The text of one JSON value, known to be valid JSON: it was parsed, or scanned, to get here.
/// (serde_json's `RawValue` can only be borrowed from its own parser; this one can also come
/// from [`scan`].)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Json<'a>(&'a str);

impl<'a> Json<'a> {
    pub fn get(self) -> &'a str {
        self.0
    }

    /// `text` when it is one valid JSON value.
    pub fn parse(text: &'a str) -> Option<Json<'a>> {
        serde_json::from_str::<&RawValue>(text).ok().map(Json::from)
    }
}

impl<'a> From<&'a RawValue> for Json<'a> {
    fn from(raw: &'a RawValue) -> Self {
        Json(raw.get())
    }
}

/// Every JSON-RPC error this server sends. The code and message of each variant are decided in
/// [`RpcError::code`] and [`RpcError::message`] and nowhere else.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RpcError {
    #[error("Parse error: {0}")]
    Parse(String),
    #[error("Invalid Request")]
    InvalidRequest(Option<String>),
    #[error("Method not found")]
    MethodNotFound,
    #[error("Invalid params: {0}")]
    InvalidParams(String),
    /// Details go to the log, never to the wire.
    #[error("Internal error")]
    Internal,
    #[error("Server busy")]
    ServerBusy,
    /// A locked connection called something other than `authenticate`, or a wrong token.
    #[error("Unauthorized")]
    Unauthorized,
    /// A request after `shutdown` (SPEC §11): `-32600`, but about this request, so its id is kept.
    #[error("Invalid Request: shutting down")]
    ShuttingDown,
}

impl RpcError {
    pub fn code(&self) -> i32 {
        match self {
            RpcError::Parse(_) => -32700,
            RpcError::InvalidRequest(_) | RpcError::ShuttingDown => -32600,
            RpcError::MethodNotFound => -32601,
            RpcError::InvalidParams(_) => -32602,
            RpcError::Internal => -32603,
            RpcError::ServerBusy => -32000,
            RpcError::Unauthorized => -32001,
        }
    }

    pub fn message(&self) -> &'static str {
        match self {
            RpcError::Parse(_) => "Parse error",
            RpcError::InvalidRequest(_) | RpcError::ShuttingDown => "Invalid Request",
            RpcError::MethodNotFound => "Method not found",
            RpcError::InvalidParams(_) => "Invalid params",
            RpcError::Internal => "Internal error",
            RpcError::ServerBusy => "Server busy",
            RpcError::Unauthorized => "Unauthorized",
        }
    }

    pub fn data(&self) -> Option<&str> {
        match self {
            RpcError::Parse(d) | RpcError::InvalidParams(d) => Some(d),
            RpcError::InvalidRequest(d) => d.as_deref(),
            RpcError::ShuttingDown => Some("shutting down"),
            _ => None,
        }
    }

    /// Errors about the envelope are answered with `"id":null` whatever the request said.
    fn hides_id(&self) -> bool {
        matches!(self, RpcError::Parse(_) | RpcError::InvalidRequest(_))
    }
}

/// A request's parameters, still raw: absent (or `null`), positional, or named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Params<'a> {
    None,
    Positional(Json<'a>),
    Named(Json<'a>),
}

/// One well-formed request. `id` is raw JSON text; `None` makes it a notification.
#[derive(Debug, PartialEq, Eq)]
pub struct Request<'a> {
    pub id: Option<Json<'a>>,
    pub method: Cow<'a, str>,
    pub params: Params<'a>,
}

/// A request line, parsed as far as the envelope.
#[derive(Debug)]
pub enum Message<'a> {
    Single(Result<Request<'a>, RpcError>),
    /// Each entry parsed on its own, so one bad entry gets its own error.
    Batch(Vec<Result<Request<'a>, RpcError>>),
    /// The line as a whole is answered with this error (`id` null).
    Rejected(RpcError),
}

/// Parses one request line. `max_batch` bounds the number of entries in a batch.
pub fn parse_line(line: &[u8], max_batch: usize) -> Message<'_> {
    let text = match std::str::from_utf8(line) {
        Ok(t) => t,
        Err(e) => return Message::Rejected(RpcError::Parse(format!("invalid UTF-8: {e}"))),
    };
    if let Some(request) = scan::request(text) {
        return Message::Single(Ok(request));
    }
    if nesting_depth_exceeds(text.as_bytes(), MAX_NESTING_DEPTH) {
        let why = format!("nesting deeper than {MAX_NESTING_DEPTH}");
        return Message::Rejected(RpcError::Parse(why));
    }
    match text.trim_start().as_bytes().first() {
        Some(b'[') => parse_batch(text, max_batch),
        Some(b'{') => Message::Single(parse_envelope(text)),
        _ => Message::Rejected(not_a_request(text)),
    }
}

fn parse_batch(text: &str, max_batch: usize) -> Message<'_> {
    let entries: Vec<&RawValue> = match serde_json::from_str(text) {
        Ok(e) => e,
        Err(e) => return Message::Rejected(RpcError::Parse(e.to_string())),
    };
    if entries.is_empty() {
        return Message::Rejected(RpcError::InvalidRequest(Some("empty batch".into())));
    }
    if entries.len() > max_batch {
        let why = format!(
            "batch of {} entries exceeds the limit of {max_batch}",
            entries.len()
        );
        return Message::Rejected(RpcError::InvalidRequest(Some(why)));
    }
    Message::Batch(entries.into_iter().map(|e| parse_entry(e.get())).collect())
}

/// A batch entry is known to be valid JSON, so any failure is an invalid request.
fn parse_entry(text: &str) -> Result<Request<'_>, RpcError> {
    if !text.starts_with('{') {
        return Err(RpcError::InvalidRequest(Some("not an object".into())));
    }
    scan::request(text).map_or_else(|| parse_envelope(text), Ok)
}

/// Valid JSON that is not a request is `-32600`; anything else is `-32700`.
fn not_a_request(text: &str) -> RpcError {
    match serde_json::from_str::<IgnoredAny>(text) {
        Ok(_) => RpcError::InvalidRequest(Some("not an object or array".into())),
        Err(e) => RpcError::Parse(e.to_string()),
    }
}

/// The members of a request object, raw. A member present as `null` is `Some("null")`, which is
/// how a request with `"id":null` is told from a notification.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default, deserialize_with = "present")]
    jsonrpc: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    method: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    params: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    id: Option<&'a RawValue>,
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

/// Any request object, through serde_json: the general path, and the one that words the errors.
fn parse_envelope(text: &str) -> Result<Request<'_>, RpcError> {
    let env: Envelope = match serde_json::from_str(text) {
        Ok(env) => env,
        Err(e) => {
            return Err(match serde_json::from_str::<IgnoredAny>(text) {
                Ok(_) => RpcError::InvalidRequest(Some(e.to_string())),
                Err(e) => RpcError::Parse(e.to_string()),
            });
        }
    };
    let invalid = |why: &str| Err(RpcError::InvalidRequest(Some(why.to_string())));
    let (jsonrpc, method) = (env.jsonrpc.map(Json::from), env.method.map(Json::from));
    if jsonrpc.and_then(decode_str).as_deref() != Some("2.0") {
        return invalid("jsonrpc must be \"2.0\"");
    }
    let Some(method) = method.and_then(decode_str) else {
        return invalid("method must be a string");
    };
    let (id, params) = (env.id.map(Json::from), env.params.map(Json::from));
    let first_byte = |raw: Json| raw.get().as_bytes().first().copied();
    if let Some(id) = id
        && !matches!(first_byte(id), Some(b'"' | b'-' | b'0'..=b'9' | b'n'))
    {
        return invalid("id must be a string, a number or null");
    }
    let params = match params {
        None => Params::None,
        Some(p) => match first_byte(p) {
            Some(b'n') => Params::None,
            Some(b'[') => Params::Positional(p),
            Some(b'{') => Params::Named(p),
            _ => return invalid("params must be an array or an object"),
        },
    };
    Ok(Request { id, method, params })
}

/// The string a raw JSON value holds, or `None` when it is not a string.
pub fn decode_str(raw: Json<'_>) -> Option<Cow<'_, str>> {
    let text = raw.get();
    if !text.starts_with('"') {
        return None;
    }
    // A raw value is valid JSON, so a string without a backslash is its own content between
    // the quotes: no need to run a parser over it (most names, methods and ids).
    if !text.contains('\\') {
        return Some(Cow::Borrowed(&text[1..text.len() - 1]));
    }
    match serde_json::from_str::<&str>(text) {
        Ok(s) => Some(Cow::Borrowed(s)),
        Err(_) => serde_json::from_str::<String>(text).ok().map(Cow::Owned),
    }
}

/// Places the entries of an array, raw, into `slots`, and returns how many entries it has
/// (which may be more than there are slots).
pub fn positional<'a>(raw: Json<'a>, slots: &mut [Option<Json<'a>>]) -> Result<usize, RpcError> {
    if let Some(count) = scan::array(raw.get(), slots) {
        return Ok(count);
    }
    let entries: Vec<&RawValue> = serde_json::from_str(raw.get())
        .map_err(|e| RpcError::InvalidRequest(Some(e.to_string())))?;
    for (slot, entry) in slots.iter_mut().zip(&entries) {
        *slot = Some(Json::from(*entry));
    }
    Ok(entries.len())
}

/// The members of an object, raw, in the order written.
pub fn named(raw: Json<'_>) -> Result<Vec<(Cow<'_, str>, Json<'_>)>, RpcError> {
    let mut members = Vec::new();
    if scan::object(raw.get(), |key, value| {
        members.push((Cow::Borrowed(key), Json(value)));
    })
    .is_some()
    {
        return Ok(members);
    }
    named_by_serde(raw)
}

fn named_by_serde(raw: Json<'_>) -> Result<Vec<(Cow<'_, str>, Json<'_>)>, RpcError> {
    struct Members;
    impl<'de> Visitor<'de> for Members {
        type Value = Vec<(Cow<'de, str>, Json<'de>)>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut members = Vec::new();
            while let Some(key) = map.next_key::<Key<'de>>()? {
                members.push((key.0, Json::from(map.next_value::<&'de RawValue>()?)));
            }
            Ok(members)
        }
    }
    let mut de = serde_json::Deserializer::from_str(raw.get());
    de.deserialize_map(Members)
        .map_err(|e| RpcError::InvalidRequest(Some(e.to_string())))
}

/// An object key, borrowed when it has no escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

/// Whether arrays and objects nest deeper than `max` anywhere in `json` (brackets inside strings
/// do not count). Checked before parsing so that no recursive walk ever sees a deeper value.
fn nesting_depth_exceeds(json: &[u8], max: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in json {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// Appends `{"jsonrpc":"2.0","id":ID,"result":` … `}` around what `result` writes.
pub fn write_result(out: &mut Vec<u8>, id: Json<'_>, result: impl FnOnce(&mut Vec<u8>)) {
    out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
    write_id(out, id);
    out.extend_from_slice(b",\"result\":");
    result(out);
    out.push(b'}');
}

/// Appends an error response. `id` is `None` for errors that cannot name their request.
pub fn write_error(out: &mut Vec<u8>, id: Option<Json<'_>>, err: &RpcError) {
    out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
    match id {
        Some(id) if !err.hides_id() => write_id(out, id),
        _ => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"error\":{\"code\":");
    out.extend_from_slice(err.code().to_string().as_bytes());
    out.extend_from_slice(b",\"message\":");
    write_str(out, err.message());
    if let Some(data) = err.data() {
        out.extend_from_slice(b",\"data\":");
        write_str(out, data);
    }
    out.extend_from_slice(b"}}");
}

/// Appends a request's id: numbers exactly as written, strings in this server's own string
/// form (escapes such as `\u00e9` become UTF-8, as in every answer).
fn write_id(out: &mut Vec<u8>, id: Json<'_>) {
    let raw = id.get();
    match decode_str(id) {
        Some(s) if raw.contains('\\') => write_str(out, &s),
        _ => out.extend_from_slice(raw.as_bytes()),
    }
}

/// Appends `s` as a JSON string: UTF-8 kept as is, quotes, backslashes and control characters
/// escaped, so the output never holds a raw newline.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0x00..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if escape.is_empty() {
            out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[(b >> 4) as usize],
                HEX[(b & 15) as usize],
            ]);
        } else {
            out.extend_from_slice(escape);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn single(line: &str) -> Result<Request<'_>, RpcError> {
        match parse_line(line.as_bytes(), 10) {
            Message::Single(r) => r,
            other => panic!("not a single request: {other:?}"),
        }
    }

    #[test]
    fn id_null_is_a_request_and_absent_id_a_notification() {
        let r = single(r#"{"jsonrpc":"2.0","method":"m","id":null}"#).unwrap();
        assert_eq!(r.id.map(|i| i.get()), Some("null"));
        let r = single(r#"{"jsonrpc":"2.0","method":"m"}"#).unwrap();
        assert!(r.id.is_none());
    }

    #[test]
    fn ids_are_kept_as_written() {
        let r = single(r#"{"jsonrpc":"2.0","method":"m","id":123456789012345678901234567890}"#);
        assert_eq!(
            r.unwrap().id.unwrap().get(),
            "123456789012345678901234567890"
        );
    }

    #[test]
    fn strings_are_decoded_with_and_without_escapes() {
        let raw = |s| Json::parse(s).unwrap();
        assert_eq!(decode_str(raw(r#""plain é""#)).as_deref(), Some("plain é"));
        assert_eq!(decode_str(raw(r#""a\"b\u00e9""#)).as_deref(), Some("a\"bé"));
        assert_eq!(decode_str(raw(r#""""#)).as_deref(), Some(""));
        assert_eq!(decode_str(raw("12")), None);
    }

    #[test]
    fn nesting_is_measured_outside_strings() {
        assert!(!nesting_depth_exceeds(b"[[\"[[[[\"]]", 2));
        assert!(nesting_depth_exceeds(b"[[[]]]", 2));
        assert!(!nesting_depth_exceeds(br#"["\"[[[", 1]"#, 1));
    }

    /// Request-like texts: `jsonrpc` and `method` (mostly right), maybe `id` and `params`, maybe
    /// a stranger or a second copy of a member, in any order, with values of every kind, and
    /// whitespace where JSON allows it (and a vertical tab, which it does not).
    fn request_like() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let value = || {
            prop::sample::select(vec![
                r#""2.0""#,
                r#""getGroup""#,
                r#""""#,
                r#""é \u0041""#,
                r#""a\"b""#,
                "\"\t\"",
                "7",
                "-0",
                "01",
                "1.5",
                "1e3",
                "-",
                "null",
                "nul",
                "true",
                "[]",
                r#"["1"]"#,
                r#"[ "1" , 2 , null ]"#,
                "[1,]",
                "[[1]]",
                r#"{"name":"x"}"#,
                r#"{ "group_id" : 1 , "name" : null }"#,
                r#"{"a":1,"a":"2"}"#,
                r#"{"a":[1]}"#,
                r#"{"\u0061":1}"#,
                r#"{"a":1,}"#,
                r#"{"a" 1}"#,
                r#"{"a":1.5}"#,
                "{}",
                "[1 2]",
                "12345678901234567890123",
            ])
        };
        let key = prop::sample::select(vec!["jsonrpc", "method", "id", "params", "x", "i\\u0064"]);
        let ws = || {
            prop_oneof![20 => Just(""), 8 => Just(" "), 4 => Just("\t"), 4 => Just("\r\n"),
                1 => Just("\u{b}")]
        };
        let member = |key: BoxedStrategy<&'static str>, value: BoxedStrategy<&'static str>| {
            (key, ws(), value, ws())
                .prop_map(|(k, w1, v, w2)| format!("{w1}\"{k}\"{w2}:{w1}{v}{w2}"))
        };
        let fixed = |k: &'static str| Just(k).boxed();
        let version = prop_oneof![4 => Just(r#""2.0""#), 1 => value()].boxed();
        let method = prop_oneof![4 => Just(r#""getGroup""#), 1 => value()].boxed();
        let members = (
            member(fixed("jsonrpc"), version),
            member(fixed("method"), method),
            prop::option::of(member(fixed("id"), value().boxed())),
            prop::option::of(member(fixed("params"), value().boxed())),
            prop::collection::vec(member(key.boxed(), value().boxed()), 0..2),
        )
            .prop_map(|(j, m, id, params, extra)| {
                let mut all = vec![j, m];
                all.extend(id.into_iter().chain(params).chain(extra));
                all
            })
            .prop_shuffle();
        (members, ws(), ws()).prop_map(|(m, a, b)| format!("{a}{{{}}}{b}", m.join(",")))
    }

    proptest::proptest! {
        // Cheap cases, and about one in eight takes the fast path.
        #![proptest_config(proptest::test_runner::Config::with_cases(4096))]

        /// The scanner is only a shortcut: whatever it accepts, the general path reads the same.
        #[test]
        fn the_scanner_agrees_with_the_general_path(text in request_like()) {
            if let Some(fast) = scan::request(&text) {
                proptest::prop_assert_eq!(Ok(fast), parse_envelope(&text), "{}", text);
            }
        }

        #[test]
        fn the_object_scanner_agrees_with_serde(text in request_like()) {
            if let Ok(Request { params: Params::Named(object), .. }) = parse_envelope(&text) {
                let mut fast = Vec::new();
                if scan::object(object.get(), |k, v| fast.push((Cow::Borrowed(k), Json(v)))).is_some() {
                    proptest::prop_assert_eq!(Ok(fast), named_by_serde(object), "{}", text);
                }
            }
        }

        #[test]
        fn the_array_scanner_agrees_with_serde(text in request_like()) {
            if let Ok(Request { params: Params::Positional(array), .. }) = parse_envelope(&text) {
                let (mut fast, mut slow) = ([None; 3], [None; 3]);
                if let Some(count) = scan::array(array.get(), &mut fast) {
                    let entries: Vec<&RawValue> = serde_json::from_str(array.get()).unwrap();
                    for (slot, entry) in slow.iter_mut().zip(&entries) {
                        *slot = Some(Json::from(*entry));
                    }
                    proptest::prop_assert_eq!((count, fast), (entries.len(), slow));
                }
            }
        }
    }

    #[test]
    fn the_scanner_takes_the_common_shapes() {
        for text in [
            r#"{"jsonrpc":"2.0","method":"getGroup","id":1,"params":["1"]}"#,
            r#"{"params":[1],"id":"a-1","method":"removeGroup","jsonrpc":"2.0"}"#,
            r#"{"jsonrpc":"2.0","method":"getAllGroups","id":null}"#,
            r#"{"jsonrpc":"2.0","method":"createGroup","params":["Ops","x"]}"#,
            r#"{"jsonrpc":"2.0","method":"getGroup","id":2,"params":{"group_id":2}}"#,
        ] {
            let fast = scan::request(text);
            assert!(fast.is_some(), "{text}");
            assert_eq!(fast.map(Ok), Some(parse_envelope(text)));
        }
    }

    #[test]
    fn strings_escape_controls_but_keep_utf8() {
        let mut out = Vec::new();
        write_str(&mut out, "é\n\"\u{1}");
        assert_eq!(String::from_utf8(out).unwrap(), "\"é\\n\\\"\\u0001\"");
    }
}

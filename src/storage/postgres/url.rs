//! The connection URL: what tokio-postgres parses, what it does not (libpq's `sslmode=verify-full`
//! and `sslrootcert`), the TLS configuration they ask for, and the URL as it may be logged.
//!
//! The password never leaves this module except inside the [`Target`]'s config: [`redact`] is
//! the only way a URL reaches a log line or an error.

use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres::Config;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::PgError;

/// The longest one connection attempt to one host may take when the URL sets no
/// `connect_timeout`: a host that drops packets must not use up a call's whole wait
/// ([`super::CONNECTION_WAIT`]) before the next host of the URL is tried.
const HOST_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Where and how to connect: the parsed URL and its TLS connector.
pub(crate) struct Target {
    pub config: Config,
    pub tls: MakeRustlsConnect,
    /// The URL with its password replaced, for logs and errors.
    pub shown: String,
}

/// How the server's certificate is checked, as libpq's `sslmode` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verify {
    /// `disable`, `prefer`, `require`: encrypted when TLS is used, the certificate not checked
    /// (libpq's meaning of `require` without a root certificate).
    Nothing,
    /// `verify-full`: the chain up to a trusted root, and the host name.
    Full,
}

impl Target {
    pub fn parse(url: &str) -> Result<Target, PgError> {
        let shown = redact(url);
        let bad = |why: String| PgError::Url {
            url: shown.clone(),
            why,
        };
        let (kept, verify, root_file) = take_libpq_tls_params(url).map_err(&bad)?;
        let mut config: Config = kept.parse().map_err(|e| bad(format!("{e}")))?;
        if verify == Verify::Full {
            config.ssl_mode(tokio_postgres::config::SslMode::Require);
        }
        if config.get_user().is_none() {
            // libpq's default: the operating system's user name.
            let user = ["PGUSER", "USER", "LOGNAME"]
                .iter()
                .find_map(|name| std::env::var(name).ok().filter(|v| !v.is_empty()));
            config.user(user.unwrap_or_else(|| "postgres".to_owned()));
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(HOST_CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("groupd");
        }
        let tls = tls_config(verify, root_file.as_deref()).map_err(&bad)?;
        Ok(Target {
            config,
            tls: MakeRustlsConnect::new(tls),
            shown,
        })
    }
}

/// Takes `sslmode=verify-full` and `sslrootcert=…` out of a URL's query (tokio-postgres knows
/// neither) and leaves the rest as written.
fn take_libpq_tls_params(url: &str) -> Result<(String, Verify, Option<String>), String> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_owned(), Verify::Nothing, None));
    };
    let (mut kept, mut verify, mut root_file) = (Vec::new(), Verify::Nothing, None);
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some(("sslmode", "verify-full")) => verify = Verify::Full,
            Some(("sslmode", "verify-ca")) => {
                return Err("sslmode=verify-ca is not supported; use verify-full".into());
            }
            Some(("sslrootcert", path)) => root_file = Some(percent_decode(path)?),
            _ => kept.push(pair),
        }
    }
    let kept = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((kept, verify, root_file))
}

fn percent_decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let (mut out, mut i) = (Vec::with_capacity(bytes.len()), 0);
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text
                .get(i + 1..i + 3)
                .ok_or("bad %-escape in sslrootcert")?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| "bad %-escape in sslrootcert")?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "sslrootcert is not UTF-8".into())
}

/// The URL with the password (in the user part, or a `password=` parameter) replaced by `***`.
pub fn redact(url: &str) -> String {
    let (head, query) = match url.split_once('?') {
        Some((head, query)) => (head, Some(query)),
        None => (url, None),
    };
    let mut shown = match head.split_once("://") {
        // Everything up to the last `@` is credentials: a password may hold `@` itself, and
        // hiding too much is harmless.
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((credentials, hosts)) => match credentials.split_once(':') {
                Some((user, _)) => format!("{scheme}://{user}:***@{hosts}"),
                None => format!("{scheme}://{credentials}@{hosts}"),
            },
            None => head.to_owned(),
        },
        // A key=value string: mask the value after `password=`.
        None => mask_param(head, ' '),
    };
    if let Some(query) = query {
        shown.push('?');
        shown.push_str(&mask_param(query, '&'));
    }
    shown
}

fn mask_param(text: &str, separator: char) -> String {
    let parts: Vec<String> = text
        .split(separator)
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if key.trim() == "password" => format!("{key}=***"),
            _ => pair.to_owned(),
        })
        .collect();
    parts.join(&separator.to_string())
}

fn tls_config(verify: Verify, root_file: Option<&str>) -> Result<rustls::ClientConfig, String> {
    // ring rather than aws-lc-rs: tokio-postgres-rustls builds ring anyway, and aws-lc-rs would
    // add a C library to the build. rustls deprecates ring's provider only for lacking
    // post-quantum key exchange.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?;
    let config = match verify {
        Verify::Nothing => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
            .with_no_client_auth(),
        Verify::Full => builder
            .with_root_certificates(roots(root_file)?)
            .with_no_client_auth(),
    };
    Ok(config)
}

/// The roots `verify-full` trusts: those of `sslrootcert` when given, otherwise the public CAs
/// (as a managed PostgreSQL service presents).
fn roots(root_file: Option<&str>) -> Result<RootCertStore, String> {
    let Some(path) = root_file else {
        return Ok(RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        });
    };
    let mut roots = RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(path).map_err(|e| format!("sslrootcert: {e}"))?;
    for cert in certs {
        let cert = cert.map_err(|e| format!("sslrootcert {path}: {e}"))?;
        roots
            .add(cert)
            .map_err(|e| format!("sslrootcert {path}: {e}"))?;
    }
    if roots.is_empty() {
        return Err(format!("sslrootcert {path} holds no certificate"));
    }
    Ok(roots)
}

/// `sslmode=require`: any certificate is accepted (libpq does the same without a root
/// certificate), but the handshake's signatures are still checked, so the session is encrypted
/// to whoever holds the certificate's key.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show() {
        for (url, shown) in [
            (
                "postgres://app:s3cret@db1:5432,db2/groups?target_session_attrs=read-write",
                "postgres://app:***@db1:5432,db2/groups?target_session_attrs=read-write",
            ),
            ("postgresql://app@db/x", "postgresql://app@db/x"),
            (
                "postgres://db/x?user=app&password=s3cret",
                "postgres://db/x?user=app&password=***",
            ),
            (
                "host=db password=s3cret user=app",
                "host=db password=*** user=app",
            ),
            ("postgres://a:p@ss@db/x", "postgres://a:***@db/x"),
        ] {
            assert_eq!(redact(url), shown);
            assert!(!redact(url).contains("s3cret"));
        }
    }

    #[test]
    fn libpq_tls_params_are_taken_out() {
        let (kept, verify, root) = take_libpq_tls_params(
            "postgres://u@h/d?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem&target_session_attrs=read-write",
        )
        .unwrap();
        assert_eq!(kept, "postgres://u@h/d?target_session_attrs=read-write");
        assert_eq!(verify, Verify::Full);
        assert_eq!(root.as_deref(), Some("/etc/ca.pem"));
        assert!(take_libpq_tls_params("postgres://h/d?sslmode=verify-ca").is_err());
        let (kept, verify, _) = take_libpq_tls_params("postgres://h/d?sslmode=require").unwrap();
        assert_eq!(
            (kept.as_str(), verify),
            ("postgres://h/d?sslmode=require", Verify::Nothing)
        );
    }

    #[test]
    fn a_bad_url_is_an_error_without_the_password() {
        let Err(e) = Target::parse("postgres://u:s3cret@h/d?no_such_option=1") else {
            panic!("parsed");
        };
        let text = e.to_string();
        assert!(
            text.contains("no_such_option") && !text.contains("s3cret"),
            "{text}"
        );
    }
}

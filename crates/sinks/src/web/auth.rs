//! The dashboard token: checked in constant time, taken only from the `Authorization`
//! header (`Bearer`, any case), never from a URL — a URL ends up in server and proxy logs,
//! browser history and `Referer` headers. [`new_token`] makes one (`demo` prints it).

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use constant_time_eq::constant_time_eq_32;
use sha2::{Digest, Sha256};

use super::AppState;

/// A configured token, kept as its SHA-256 digest: comparing two digests of fixed length
/// in constant time says nothing about where a guess goes wrong nor how long the token is.
#[derive(Clone)]
pub struct Token {
    digest: [u8; 32],
}

impl Token {
    pub fn new(secret: &str) -> Token {
        Token {
            digest: digest(secret),
        }
    }

    pub fn matches(&self, given: &str) -> bool {
        constant_time_eq_32(&digest(given), &self.digest)
    }
}

fn digest(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

/// The token of an `Authorization: Bearer <token>` header. The scheme is matched
/// case-insensitively (RFC 9110 §11.1: `bearer`, `BEARER` work too).
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim_start())
}

/// True when the query string carries a `token=` parameter (the old way; refused).
fn token_in_url(request: &Request) -> bool {
    request.uri().query().is_some_and(|q| {
        form_urlencoded::parse(q.as_bytes()).any(|(name, _)| name.eq_ignore_ascii_case("token"))
    })
}

/// The route layer of every protected route: without a configured token everything
/// passes; with one, only a request whose `Authorization` header carries it.
pub async fn require_token(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let Some(expected) = &app.token else {
        return next.run(request).await;
    };
    if bearer(request.headers()).is_some_and(|given| expected.matches(given)) {
        return next.run(request).await;
    }
    let message = if token_in_url(&request) {
        "a token in the URL is not accepted (URLs end up in logs and browser history): send \
         the header Authorization: Bearer <token>\n"
    } else {
        "missing or wrong token: send the header Authorization: Bearer <token>\n"
    };
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        message,
    )
        .into_response()
}

/// A new random token: 128 bits from the thread's CSPRNG (ChaCha seeded by the OS), as
/// 32 hex digits — easy to copy, nothing to escape in a header or a TOML string.
pub fn new_token() -> String {
    let mut bytes = [0u8; 16];
    rand::fill(&mut bytes);
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn auth(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        assert_eq!(bearer(&auth("Bearer abc")), Some("abc"));
        assert_eq!(bearer(&auth("bearer abc")), Some("abc"));
        assert_eq!(bearer(&auth("BEARER  abc")), Some("abc"));
        assert_eq!(bearer(&auth("Basic abc")), None);
        assert_eq!(bearer(&auth("Bearerabc")), None);
        assert_eq!(bearer(&HeaderMap::new()), None);
    }

    #[test]
    fn tokens_match_only_in_full() {
        let t = Token::new("s3cret");
        assert!(t.matches("s3cret"));
        for wrong in ["s3cre", "s3cret ", "S3cret", "", "s3cret-and-more"] {
            assert!(!t.matches(wrong), "{wrong:?}");
        }
    }

    #[test]
    fn new_tokens_are_random_hex() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
    }
}

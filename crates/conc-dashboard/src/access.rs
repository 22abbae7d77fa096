//! Who may use the dashboard (loopback clients by default, then the gate), and
//! whether a POST comes from the dashboard's own pages (Origin or Referer, and
//! the CSRF token).

use std::net::SocketAddr;

use axum::extract::ConnectInfo;
use axum::http::header::{HOST, ORIGIN, REFERER};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};

use crate::state::Settings;

/// Why a request was refused: the status and a message for the person.
pub(crate) type Refusal = (StatusCode, String);

/// Lets the request in, or says why not.
pub(crate) fn admit(parts: &Parts, settings: &Settings) -> Result<(), Refusal> {
    if !settings.allow_remote {
        match parts.extensions.get::<ConnectInfo<SocketAddr>>() {
            Some(ConnectInfo(addr)) if addr.ip().to_canonical().is_loopback() => {}
            Some(ConnectInfo(addr)) => {
                return Err((
                    StatusCode::FORBIDDEN,
                    format!(
                        "only loopback clients may use this dashboard, and {} is not one \
                         (the application can open it with allow_remote and a gate)",
                        addr.ip()
                    ),
                ));
            }
            None => {
                return Err((
                    StatusCode::FORBIDDEN,
                    "the client's address is unknown, so the loopback rule cannot admit it: \
                     serve the application with into_make_service_with_connect_info::<SocketAddr>() \
                     (or allow remote clients behind a gate)"
                        .to_owned(),
                ));
            }
        }
    }
    check_host(authority(parts), settings)?;
    if let Some(gate) = &settings.gate
        && !gate(parts)
    {
        return Err((
            StatusCode::FORBIDDEN,
            "the dashboard's gate refused this request".to_owned(),
        ));
    }
    Ok(())
}

/// The host a request was sent to: its `Host` header, or over HTTP/2 (which
/// has none) the `:authority` the server put into the URI.
pub(crate) fn authority(parts: &Parts) -> Option<&str> {
    match parts.headers.get(HOST) {
        Some(host) => Some(host.to_str().unwrap_or("")),
        None => parts.uri.authority().map(axum::http::uri::Authority::as_str),
    }
}

/// Guards against DNS rebinding: a page of another site whose name was
/// pointed at the dashboard's address reaches it with its own name as the
/// host (and as its Origin, so the Origin check cannot tell). So the host must
/// be a loopback name (`localhost`, a loopback address) or the host of a
/// trusted origin; a dashboard open to remote clients lists the names it is
/// reached by with `trusted_origin`. A request without any host (HTTP/1.0) is
/// let through: browsers always send one.
fn check_host(host: Option<&str>, settings: &Settings) -> Result<(), Refusal> {
    let Some(host) = host else { return Ok(()) };
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    let loopback = name.eq_ignore_ascii_case("localhost")
        || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.to_canonical().is_loopback());
    let trusted = settings.trusted_origins.iter().any(|origin| {
        origin.split_once("://").is_some_and(|(_, authority)| authority.eq_ignore_ascii_case(host))
    });
    if loopback || trusted {
        Ok(())
    } else {
        Err((
            StatusCode::FORBIDDEN,
            format!(
                "this dashboard answers loopback names and its trusted origins only, and \
                 `{host}` is neither (a guard against DNS rebinding): use http://localhost or \
                 http://127.0.0.1, or add the name as a trusted origin"
            ),
        ))
    }
}

/// The origin (`scheme://host[:port]`) of a URL.
fn origin_of(url: &str) -> Option<&str> {
    let rest_at = url.find("://")? + 3;
    let end = url[rest_at..].find('/').map_or(url.len(), |i| rest_at + i);
    Some(&url[..end])
}

/// Checks that a POST comes from a page of this dashboard: its Origin (or,
/// without one, its Referer) names this host or a trusted origin, and it
/// carries the dashboard's token. A request with neither header (a script,
/// curl) needs the token only.
pub(crate) fn check_post(
    headers: &HeaderMap,
    host: &str,
    token: Option<&str>,
    csrf: &str,
    settings: &Settings,
) -> Result<(), Refusal> {
    let forbidden = |message: String| Err((StatusCode::FORBIDDEN, message));
    let claimed = match (headers.get(ORIGIN), headers.get(REFERER)) {
        (Some(origin), _) => Some(origin.to_str().unwrap_or("")),
        (None, Some(referer)) => Some(origin_of(referer.to_str().unwrap_or("")).unwrap_or("")),
        (None, None) => None,
    };
    if let Some(claimed) = claimed {
        let same_host = ["http://", "https://"]
            .iter()
            .any(|scheme| !host.is_empty() && claimed.strip_prefix(scheme) == Some(host));
        if !same_host && !settings.trusted_origins.iter().any(|o| o == claimed) {
            return forbidden(format!(
                "cross-origin request refused: it comes from `{claimed}`, not from this \
                 dashboard's host `{host}` or a trusted origin"
            ));
        }
    }
    match token {
        Some(token) if constant_time_eq(token.as_bytes(), csrf.as_bytes()) => Ok(()),
        Some(_) => forbidden("wrong CSRF token: reload the page and try again".to_owned()),
        None => forbidden(
            "missing CSRF token: send the form field `csrf` or the header `x-csrf-token`"
                .to_owned(),
        ),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0_u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The `csrf` field of a form body (`application/x-www-form-urlencoded`);
/// tokens are hex, so no decoding is needed.
pub(crate) fn form_token(body: &[u8]) -> Option<&str> {
    std::str::from_utf8(body).ok()?.split('&').find_map(|pair| pair.strip_prefix("csrf="))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::http::HeaderValue;

    use super::*;

    fn settings() -> Settings {
        Settings {
            gate: None,
            allow_remote: false,
            trusted_origins: vec!["https://ops.example".to_owned()],
            page_size: 50,
            recent_capacity: 10,
            sample_every: Duration::ZERO,
            history: 10,
            refresh: Duration::ZERO,
            title: "t".to_owned(),
        }
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, HeaderValue::from_static(v));
        }
        map
    }

    /// `check_post` with the host taken from the headers' `Host`.
    fn post(h: &HeaderMap, token: Option<&str>, s: &Settings) -> Result<(), Refusal> {
        let host = h.get("host").map_or("", |v| v.to_str().unwrap());
        check_post(h, host, token, "abc", s)
    }

    #[test]
    fn posts_need_the_token_and_a_matching_origin() {
        let s = settings();
        let ok = headers(&[("host", "127.0.0.1:8080"), ("origin", "http://127.0.0.1:8080")]);
        assert!(post(&ok, Some("abc"), &s).is_ok());
        assert!(post(&ok, Some("abd"), &s).is_err());
        assert!(post(&ok, None, &s).is_err());
        let evil = headers(&[("host", "127.0.0.1:8080"), ("origin", "http://evil.example")]);
        let (status, message) = post(&evil, Some("abc"), &s).unwrap_err();
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(message.contains("evil.example"), "{message}");
        let trusted = headers(&[("host", "10.0.0.1"), ("origin", "https://ops.example")]);
        assert!(post(&trusted, Some("abc"), &s).is_ok());
        let referer =
            headers(&[("host", "localhost:1"), ("referer", "http://localhost:1/failed?x=1")]);
        assert!(post(&referer, Some("abc"), &s).is_ok());
        let bad_referer = headers(&[("host", "localhost:1"), ("referer", "http://localhost:2/")]);
        assert!(post(&bad_referer, Some("abc"), &s).is_err());
        assert!(post(&headers(&[]), Some("abc"), &s).is_ok(), "a script");
        // HTTP/2: no Host header, the host comes from the request's authority.
        let h2 = headers(&[("origin", "https://127.0.0.1:8443")]);
        assert!(check_post(&h2, "127.0.0.1:8443", Some("abc"), "abc", &s).is_ok());
    }

    #[test]
    fn the_dashboard_answers_loopback_names_and_trusted_origins_only() {
        let mut s = settings();
        for remote in [false, true] {
            s.allow_remote = remote;
            for host in ["localhost:9090", "127.0.0.1:9090", "127.3.4.5", "[::1]:9090", "LOCALHOST"]
            {
                assert!(check_host(Some(host), &s).is_ok(), "{host}");
            }
            for host in ["evil.example:9090", "10.0.0.1:9090", "[2001:db8::1]:1", "localhost.evil"]
            {
                let (status, message) = check_host(Some(host), &s).unwrap_err();
                assert_eq!(status, StatusCode::FORBIDDEN);
                assert!(message.contains(host), "{message}");
            }
            assert!(check_host(Some("ops.example"), &s).is_ok(), "trusted");
            assert!(check_host(None, &s).is_ok(), "no host at all");
        }
    }

    #[test]
    fn over_http2_the_host_is_the_uri_authority() {
        let request =
            axum::http::Request::get("https://evil.example:9090/api/overview").body(()).unwrap();
        let (parts, ()) = request.into_parts();
        assert_eq!(authority(&parts), Some("evil.example:9090"));
        assert!(check_host(authority(&parts), &settings()).is_err());
        let mut with_host = axum::http::Request::get("/").body(()).unwrap().into_parts().0;
        with_host.headers.insert("host", HeaderValue::from_static("localhost:9090"));
        assert_eq!(authority(&with_host), Some("localhost:9090"));
    }

    #[test]
    fn reads_the_form_token() {
        assert_eq!(form_token(b"a=1&csrf=00ff&b=2"), Some("00ff"));
        assert_eq!(form_token(b"a=1"), None);
    }
}

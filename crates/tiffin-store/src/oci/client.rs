//! A blocking client of the OCI distribution API: authentication (anonymous, basic, bearer
//! token), blob existence checks, chunked uploads, streamed downloads and manifests.

use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use ureq::http::Response;

use super::Reference;
use crate::{Error, Result};

/// Blobs up to this size go up in one PUT; larger ones in PATCH chunks of this size, so memory
/// stays bounded whatever the model's size.
pub(crate) const CHUNK: usize = 8 << 20;

/// The largest registry answer read into memory: a manifest, a token answer, an error body. A
/// larger one is refused as it arrives; real ones are kilobytes. (Blobs are streamed to disk
/// instead, each cut off one byte past the size its manifest declares.)
pub const MAX_SMALL_BODY: u64 = 4 << 20;

/// The variables holding registry credentials, after `--username`/`--password`.
pub const USERNAME_VAR: &str = "TIFFIN_REGISTRY_USERNAME";
/// See [`USERNAME_VAR`].
pub const PASSWORD_VAR: &str = "TIFFIN_REGISTRY_PASSWORD";

/// A registry user name and password (or token).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub username: String,
    /// The password or access token.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The password never reaches a log or an error message.
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// Credentials for `registry` from the environment (`TIFFIN_REGISTRY_USERNAME` and
    /// `TIFFIN_REGISTRY_PASSWORD`), else from the Docker config file's `auths` (the file in
    /// `$DOCKER_CONFIG`, else `~/.docker/config.json`); `None` when neither has any.
    pub fn lookup(registry: &str) -> Result<Option<Credentials>> {
        if let (Ok(username), Ok(password)) =
            (std::env::var(USERNAME_VAR), std::env::var(PASSWORD_VAR))
        {
            return Ok(Some(Credentials { username, password }));
        }
        let path = match std::env::var_os("DOCKER_CONFIG") {
            Some(dir) => PathBuf::from(dir).join("config.json"),
            None => match dirs::home_dir() {
                Some(home) => home.join(".docker").join("config.json"),
                None => return Ok(None),
            },
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(Error::Read { path, source }),
        };
        Credentials::from_docker_config(&text, registry)
            .map_err(|reason| Error::BadInput { path, reason })
    }

    /// The credentials of `registry` in the text of a Docker config file, whose `auths` map
    /// hosts (or `https://host/...` URLs) to `{"auth": base64("user:password")}`.
    pub fn from_docker_config(text: &str, registry: &str) -> Result<Option<Credentials>, String> {
        let config: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| format!("is not JSON ({e}): fix it, or point DOCKER_CONFIG elsewhere"))?;
        let Some(auths) = config.get("auths").and_then(|a| a.as_object()) else {
            return Ok(None);
        };
        let entry = auths.iter().find(|(key, _)| {
            let host = key
                .trim_start_matches("https://")
                .trim_start_matches("http://");
            host.split('/').next() == Some(registry)
        });
        let Some(auth) = entry
            .and_then(|(_, v)| v.get("auth"))
            .and_then(|a| a.as_str())
        else {
            return Ok(None);
        };
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(|| {
                format!("auths.{registry}.auth is not base64 of `user:password`: log in again")
            })?;
        let (username, password) = decoded.split_once(':').ok_or_else(|| {
            format!("auths.{registry}.auth does not hold `user:password`: log in again")
        })?;
        Ok(Some(Credentials {
            username: username.to_owned(),
            password: password.to_owned(),
        }))
    }

    fn basic(&self) -> String {
        let pair = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        )
    }
}

/// How to reach a registry.
#[derive(Debug, Clone, Default)]
pub struct ClientOptions {
    /// Allow plain HTTP to a registry that is not on this machine.
    pub insecure: bool,
    /// Credentials; `None` tries anonymous access.
    pub credentials: Option<Credentials>,
}

/// A `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Challenge {
    /// `bearer` or `basic`, lowercased.
    pub(crate) scheme: String,
    /// The parameters, names lowercased.
    pub(crate) params: Vec<(String, String)>,
}

impl Challenge {
    /// Parses `Bearer realm="...",service="...",scope="repository:a:pull,push"`; quoted values
    /// may hold commas.
    pub(crate) fn parse(header: &str) -> Option<Challenge> {
        let header = header.trim();
        let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
        if scheme.is_empty() {
            return None;
        }
        let mut params = Vec::new();
        let mut chars = rest.chars().peekable();
        loop {
            while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
                chars.next();
            }
            let mut name = String::new();
            while let Some(&c) = chars.peek() {
                if c == '=' {
                    break;
                }
                name.push(c);
                chars.next();
            }
            if name.is_empty() {
                break;
            }
            if chars.next() != Some('=') {
                return None;
            }
            let mut value = String::new();
            if chars.peek() == Some(&'"') {
                chars.next();
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => value.extend(chars.next()),
                        Some(c) => value.push(c),
                        None => return None,
                    }
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if c == ',' {
                        break;
                    }
                    value.push(c);
                    chars.next();
                }
            }
            params.push((name.trim().to_ascii_lowercase(), value));
        }
        Some(Challenge {
            scheme: scheme.to_ascii_lowercase(),
            params,
        })
    }

    fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A client for one repository of one registry.
#[derive(Debug)]
pub(crate) struct Client {
    agent: ureq::Agent,
    base: String,
    repository: String,
    credentials: Option<Credentials>,
    /// The `Authorization` header value, once authenticated.
    authorization: Option<String>,
}

impl Client {
    /// A client for `reference`'s repository; `push` asks for push rights as well as pull.
    /// Plain HTTP is used for a registry on this machine or with `insecure`, HTTPS otherwise.
    pub(crate) fn connect(
        reference: &Reference,
        options: &ClientOptions,
        push: bool,
    ) -> Result<Client> {
        let scheme = if reference.is_loopback() || options.insecure {
            "http"
        } else {
            "https"
        };
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_recv_response(Some(Duration::from_secs(300)))
            .user_agent(concat!("tiffin/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        let mut client = Client {
            agent,
            base: format!("{scheme}://{}", reference.registry),
            repository: reference.repository.clone(),
            credentials: options.credentials.clone(),
            authorization: None,
        };
        client.authenticate(push)?;
        Ok(client)
    }

    fn url(&self, path: &str) -> String {
        format!("{}/v2/{}/{path}", self.base, self.repository)
    }

    /// Asks `/v2/` what the registry wants, and gets it: nothing, basic credentials, or a bearer
    /// token from the realm it names (with the credentials, if any).
    fn authenticate(&mut self, push: bool) -> Result<()> {
        let url = format!("{}/v2/", self.base);
        let response = self.agent.get(&url).call().map_err(transport(&url))?;
        match response.status().as_u16() {
            200..=299 => return Ok(()),
            401 => {}
            status => {
                return Err(Error::Registry {
                    url,
                    reason: format!(
                        "answered {status} to the API check; is this an OCI distribution registry?"
                    ),
                });
            }
        }
        let challenge = header(&response, "www-authenticate")
            .and_then(|h| Challenge::parse(&h))
            .ok_or_else(|| Error::Registry {
                url: url.clone(),
                reason: "answered 401 without a usable WWW-Authenticate challenge".into(),
            })?;
        match challenge.scheme.as_str() {
            "basic" => {
                let credentials = self.credentials.as_ref().ok_or_else(|| Error::Registry {
                    url: url.clone(),
                    reason: needs_credentials(),
                })?;
                self.authorization = Some(credentials.basic());
                let response = self.get(&url, &[])?;
                if response.status().as_u16() == 401 {
                    return Err(Error::Registry {
                        url,
                        reason: "refused the user name and password: check them".into(),
                    });
                }
                Ok(())
            }
            "bearer" => {
                let realm = challenge.param("realm").ok_or_else(|| Error::Registry {
                    url: url.clone(),
                    reason: "sent a bearer challenge without a realm".into(),
                })?;
                let actions = if push { "pull,push" } else { "pull" };
                let scope = format!("repository:{}:{actions}", self.repository);
                let mut request = self.agent.get(realm).query("scope", &scope);
                if let Some(service) = challenge.param("service") {
                    request = request.query("service", service);
                }
                if let Some(credentials) = &self.credentials {
                    request = request.header("Authorization", credentials.basic());
                }
                let mut response = request.call().map_err(transport(realm))?;
                let status = response.status().as_u16();
                if status == 401 || status == 403 {
                    return Err(Error::Registry {
                        url: realm.to_owned(),
                        reason: format!(
                            "the token service refused {scope} ({status}): {}",
                            if self.credentials.is_some() {
                                "check the user name and password"
                            } else {
                                "it needs credentials; pass --username and --password"
                            }
                        ),
                    });
                }
                let body = read_small(&mut response, realm)?;
                let token: serde_json::Value =
                    serde_json::from_slice(&body).map_err(|e| Error::Registry {
                        url: realm.to_owned(),
                        reason: format!("the token service answered {status} with no JSON ({e})"),
                    })?;
                let token = token
                    .get("token")
                    .or_else(|| token.get("access_token"))
                    .and_then(|t| t.as_str())
                    .ok_or_else(|| Error::Registry {
                        url: realm.to_owned(),
                        reason: format!(
                            "the token service answered {status} without a `token` field"
                        ),
                    })?;
                self.authorization = Some(format!("Bearer {token}"));
                Ok(())
            }
            other => Err(Error::Registry {
                url,
                reason: format!("asks for `{other}` authentication, which tiffin does not speak"),
            }),
        }
    }

    fn get(&self, url: &str, headers: &[(&str, &str)]) -> Result<Response<ureq::Body>> {
        let mut request = self.agent.get(url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request = self.authorized(request);
        request.call().map_err(transport(url))
    }

    /// `request` with this client's credentials, when it has any.
    fn authorized<B>(&self, request: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        match &self.authorization {
            Some(auth) => request.header("Authorization", auth),
            None => request,
        }
    }

    /// True when the repository has the blob.
    pub(crate) fn has_blob(&self, digest: &str) -> Result<bool> {
        let url = self.url(&format!("blobs/{digest}"));
        let request = self.authorized(self.agent.head(&url));
        let response = request.call().map_err(transport(&url))?;
        match response.status().as_u16() {
            200..=299 => Ok(true),
            404 => Ok(false),
            status => Err(status_error(&url, status, "checking for a blob")),
        }
    }

    /// Uploads a blob of `size` bytes from `reader`: one PUT when it is small, PATCH chunks of
    /// [`CHUNK`] bytes then a closing PUT otherwise. The registry checks the digest.
    pub(crate) fn upload_blob(&self, digest: &str, size: u64, reader: &mut dyn Read) -> Result<()> {
        let start = self.url("blobs/uploads/");
        let request = self.authorized(self.agent.post(&start));
        let response = request.send_empty().map_err(transport(&start))?;
        let mut location = self.location(&response, &start, "starting an upload")?;
        let mut buf = Vec::with_capacity(CHUNK.min(size as usize));
        let mut sent: u64 = 0;
        if size > CHUNK as u64 {
            while sent < size {
                buf.clear();
                let n = reader
                    .take(CHUNK as u64)
                    .read_to_end(&mut buf)
                    .map_err(|source| Error::Read {
                        path: PathBuf::from(digest),
                        source,
                    })?;
                if n == 0 {
                    break;
                }
                let range = format!("{sent}-{}", sent + n as u64 - 1);
                let request = self.authorized(
                    self.agent
                        .patch(&location)
                        .header("Content-Type", "application/octet-stream")
                        .header("Content-Range", &range),
                );
                let response = request.send(&buf[..]).map_err(transport(&location))?;
                location = self.location(&response, &location, "uploading a chunk")?;
                sent += n as u64;
            }
            buf.clear();
        } else {
            reader.read_to_end(&mut buf).map_err(|source| Error::Read {
                path: PathBuf::from(digest),
                source,
            })?;
            sent = buf.len() as u64;
        }
        if sent != size {
            return Err(Error::Store {
                reason: format!(
                    "blob {digest} held {sent} bytes instead of {size} while it was uploaded: \
                     was the package changed meanwhile? verify it and push again"
                ),
            });
        }
        let separator = if location.contains('?') { '&' } else { '?' };
        let url = format!("{location}{separator}digest={digest}");
        let request = self.authorized(
            self.agent
                .put(&url)
                .header("Content-Type", "application/octet-stream"),
        );
        let response = request.send(&buf[..]).map_err(transport(&url))?;
        match response.status().as_u16() {
            201 | 204 | 200 => Ok(()),
            status => Err(status_error(&url, status, "finishing an upload")),
        }
    }

    /// The upload URL a 202 answer's `Location` header gives, made absolute.
    fn location(&self, response: &Response<ureq::Body>, url: &str, doing: &str) -> Result<String> {
        let status = response.status().as_u16();
        if status != 202 {
            return Err(status_error(url, status, doing));
        }
        let location = header(response, "location").ok_or_else(|| Error::Registry {
            url: url.to_owned(),
            reason: format!("answered {doing} without a Location header"),
        })?;
        Ok(
            if location.starts_with("http://") || location.starts_with("https://") {
                location
            } else {
                format!("{}{location}", self.base)
            },
        )
    }

    /// Streams a blob: returns the body reader and the URL it came from.
    pub(crate) fn blob(&self, digest: &str) -> Result<(impl Read + use<>, String)> {
        let url = self.url(&format!("blobs/{digest}"));
        let response = self.get(&url, &[])?;
        let status = response.status().as_u16();
        if status != 200 {
            return Err(status_error(&url, status, "fetching a blob"));
        }
        Ok((response.into_body().into_reader(), url))
    }

    /// Fetches a manifest by tag or digest: its bytes and media type.
    pub(crate) fn manifest(&self, target: &str, accept: &str) -> Result<(Vec<u8>, String)> {
        let url = self.url(&format!("manifests/{target}"));
        let mut response = self.get(&url, &[("Accept", accept)])?;
        let status = response.status().as_u16();
        if status == 404 {
            return Err(Error::Registry {
                url,
                reason: "no such manifest: check the repository and tag".into(),
            });
        }
        if status != 200 {
            return Err(status_error(&url, status, "fetching the manifest"));
        }
        let media_type = header(&response, "content-type").unwrap_or_default();
        Ok((read_small(&mut response, &url)?, media_type))
    }

    /// Writes a manifest under a tag.
    pub(crate) fn put_manifest(&self, tag: &str, media_type: &str, bytes: &[u8]) -> Result<()> {
        let url = self.url(&format!("manifests/{tag}"));
        let request = self.authorized(self.agent.put(&url).header("Content-Type", media_type));
        let mut response = request.send(bytes).map_err(transport(&url))?;
        match response.status().as_u16() {
            200..=299 => Ok(()),
            status => {
                let body = read_small(&mut response, &url).unwrap_or_default();
                Err(Error::Registry {
                    url,
                    reason: format!(
                        "refused the manifest ({status}): {}",
                        String::from_utf8_lossy(&body).trim()
                    ),
                })
            }
        }
    }
}

fn header(response: &Response<ureq::Body>, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn read_small(response: &mut Response<ureq::Body>, url: &str) -> Result<Vec<u8>> {
    response
        .body_mut()
        .with_config()
        .limit(MAX_SMALL_BODY)
        .read_to_vec()
        .map_err(|e| Error::Registry {
            url: url.to_owned(),
            reason: match e {
                ureq::Error::BodyExceedsLimit(_) => format!(
                    "answered more than {MAX_SMALL_BODY} bytes, more than the bound \
                     MAX_SMALL_BODY allows for a manifest or token answer: check that the \
                     address is an OCI registry"
                ),
                e => format!("cannot read the answer ({e})"),
            },
        })
}

fn needs_credentials() -> String {
    format!(
        "asks for credentials: pass --username and --password, set {USERNAME_VAR} and \
         {PASSWORD_VAR}, or log in with `docker login`"
    )
}

fn status_error(url: &str, status: u16, doing: &str) -> Error {
    let hint = match status {
        401 => needs_credentials(),
        403 => "refused access: check that these credentials may use this repository".into(),
        404 => "not found: check the repository name".into(),
        _ => "see the registry's log".into(),
    };
    Error::Registry {
        url: url.to_owned(),
        reason: format!("answered {status} while {doing}; {hint}"),
    }
}

fn transport(url: &str) -> impl FnOnce(ureq::Error) -> Error + '_ {
    move |e| Error::Registry {
        url: url.to_owned(),
        reason: format!(
            "cannot reach it ({e}); check the address (a plain-HTTP registry on another machine \
             needs --insecure)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_and_basic_challenges() {
        let c = Challenge::parse(
            r#"Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull,push""#,
        )
        .unwrap();
        assert_eq!(c.scheme, "bearer");
        assert_eq!(c.param("realm"), Some("https://auth.example.com/token"));
        assert_eq!(c.param("service"), Some("registry.example.com"));
        assert_eq!(c.param("scope"), Some("repository:a/b:pull,push"));

        let c = Challenge::parse(r#"Basic realm="Registry Realm""#).unwrap();
        assert_eq!(c.scheme, "basic");
        assert_eq!(c.param("realm"), Some("Registry Realm"));

        assert_eq!(Challenge::parse(""), None);
        assert_eq!(Challenge::parse(r#"Bearer realm="unterminated"#), None);
    }

    #[test]
    fn reads_docker_config_auths() {
        let auth = base64::engine::general_purpose::STANDARD.encode("ada:s3cret");
        let text = format!(
            r#"{{"auths": {{"https://registry.example.com/v1/": {{"auth": "{auth}"}}, "localhost:5000": {{"auth": "{auth}"}}}}}}"#
        );
        let c = Credentials::from_docker_config(&text, "localhost:5000")
            .unwrap()
            .unwrap();
        assert_eq!(c.username, "ada");
        assert_eq!(c.password, "s3cret");
        assert!(
            Credentials::from_docker_config(&text, "registry.example.com")
                .unwrap()
                .is_some()
        );
        assert_eq!(
            Credentials::from_docker_config(&text, "other:5000").unwrap(),
            None
        );
        let err = Credentials::from_docker_config(r#"{"auths":{"h:1":{"auth":"!!"}}}"#, "h:1")
            .unwrap_err();
        assert!(err.contains("auths.h:1.auth is not base64"), "{err}");
        assert!(format!("{c:?}").contains("ada") && !format!("{c:?}").contains("s3cret"));
    }
}

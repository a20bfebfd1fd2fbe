//! The browser's part of the demo's login: the demo user signs in on the
//! gateway's own pages (password, then a TOTP code computed from the
//! account's secret), and the redirect is delivered to the loopback
//! listener of the real `seqshield login`, which exchanges the code with
//! its PKCE verifier and saves the token.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::Url;
use seqshield_auth::totp::{self, TotpSecret};

use crate::client::{http_builder, now};

/// How long the login command may take to print its authorization URL.
const URL_TIMEOUT: Duration = Duration::from_secs(60);

/// A form on one of the gateway's pages: where it posts, and its fields.
#[derive(Debug)]
struct Form {
    action: String,
    fields: Vec<(String, String)>,
}

/// The value of attribute `name` in an HTML start tag, entity-decoded.
fn attr(tag: &str, name: &str) -> Option<String> {
    let pat = format!(" {name}=\"");
    let i = tag.find(&pat)? + pat.len();
    let v = &tag[i..i + tag[i..].find('"')?];
    Some(
        v.replace("&quot;", "\"").replace("&#39;", "'").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&"),
    )
}

impl Form {
    /// The first form of a page, as a browser would see it.
    fn parse(html: &str) -> Result<Self> {
        let start = html.find("<form").context("the gateway's page has no form")?;
        let end = start + html[start..].find("</form>").context("the gateway's form is not closed")?;
        let form = &html[start..end];
        let action = attr(&form[..form.find('>').unwrap_or(form.len())], "action").context("form without action")?;
        let mut fields = Vec::new();
        let mut rest = form;
        while let Some(i) = rest.find("<input") {
            let Some(len) = rest[i..].find('>') else { break };
            let tag = &rest[i..i + len];
            if let Some(name) = attr(tag, "name") {
                fields.push((name, attr(tag, "value").unwrap_or_default()));
            }
            rest = &rest[i + len..];
        }
        Ok(Self { action, fields })
    }

    fn set(&mut self, name: &str, value: &str) -> Result<()> {
        let f = self.fields.iter_mut().find(|(n, _)| n == name).with_context(|| format!("the form has no {name}"))?;
        f.1 = value.to_owned();
        Ok(())
    }
}

/// Runs `seqshield login --no-browser` as the demo user and plays the
/// browser for it. `env` is the client environment (its config home).
pub fn login(
    exe: &Path,
    env: &[(&str, &Path)],
    server: &Url,
    ca_cert: &Path,
    user: &str,
    password: &str,
    secret: &TotpSecret,
) -> Result<()> {
    let mut cmd = Command::new(exe);
    cmd.args(["login", "--no-browser", "--server", server.as_str(), "--ca-cert"])
        .arg(ca_cert)
        .env_remove("SEQSHIELD_TOKEN")
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = Reap(cmd.spawn().context("cannot start seqshield login")?);
    let stderr = child.0.stderr.take().context("no stderr")?;
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let t = line.trim();
            if t.starts_with("https://") && t.contains("/authorize?") {
                let _ = tx.send(t.to_owned());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let authorize = match rx.recv_timeout(URL_TIMEOUT) {
        Ok(u) => Url::parse(&u).context("login printed a malformed URL")?,
        Err(_) => {
            let _ = child.0.kill();
            let _ = child.0.wait();
            bail!("seqshield login printed no sign-in URL: {}", reader.join().unwrap_or_default().trim());
        }
    };
    let callback = sign_in(server, ca_cert, &authorize, user, password, secret)?;
    deliver(&callback)?;
    let status = child.0.wait().context("cannot wait for seqshield login")?;
    let log = reader.join().unwrap_or_default();
    if !status.success() {
        bail!("seqshield login failed ({status}): {}", log.trim());
    }
    Ok(())
}

/// Signs in on the gateway's pages and returns where the gateway sends the
/// browser: the CLI's loopback callback with the code.
fn sign_in(
    server: &Url,
    ca_cert: &Path,
    authorize: &Url,
    user: &str,
    password: &str,
    secret: &TotpSecret,
) -> Result<Url> {
    if authorize.origin() != server.origin() {
        bail!("the sign-in URL {authorize} is not on the gateway {server}");
    }
    let http = http_builder(ca_cert)?.build().context("cannot build the HTTP client")?;
    crate::client::block_on(async {
        let resp = http.get(authorize.clone()).send().await.context("cannot load the sign-in page")?;
        if !resp.status().is_success() {
            bail!("the sign-in page answered {}", resp.status());
        }
        let cookie = resp
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok()?.split(';').next().map(str::to_owned))
            .collect::<Vec<_>>()
            .join("; ");
        let mut form = Form::parse(&resp.text().await?)?;
        form.set("username", user)?;
        form.set("password", password)?;
        let resp = http
            .post(server.join(&form.action)?)
            .header(COOKIE, &cookie)
            .form(&form.fields)
            .send()
            .await
            .context("cannot post the password")?;
        let status = resp.status();
        let html = resp.text().await?;
        if !status.is_success() {
            bail!("the password step answered {status}");
        }
        let mut form = Form::parse(&html)?;
        if !form.action.ends_with("/totp") {
            bail!("the gateway did not ask for a TOTP code after the password");
        }
        form.set("code", &totp::code_at(secret, totp::step_at(now())))?;
        let resp = http
            .post(server.join(&form.action)?)
            .header(COOKIE, &cookie)
            .form(&form.fields)
            .send()
            .await
            .context("cannot post the TOTP code")?;
        if !resp.status().is_redirection() {
            bail!("the TOTP step answered {} instead of redirecting", resp.status());
        }
        let to = resp.headers().get(LOCATION).context("redirect without Location")?.to_str()?;
        Url::parse(to).context("the gateway redirected to a malformed URL")
    })
}

/// The browser's last step: a plain GET to the CLI's loopback listener.
fn deliver(url: &Url) -> Result<()> {
    use std::io::{Read, Write};
    if url.scheme() != "http" || url.host_str() != Some("127.0.0.1") {
        bail!("the gateway redirected to {url}, not to the CLI's loopback listener");
    }
    let port = url.port().context("callback without a port")?;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).context("cannot reach the login listener")?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    let target = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    };
    write!(s, "GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n")?;
    let mut resp = String::new();
    s.read_to_string(&mut resp)?;
    if !resp.starts_with("HTTP/1.1 200") {
        bail!("the login listener answered: {}", resp.lines().next().unwrap_or_default());
    }
    Ok(())
}

/// Kills and reaps a child on drop (an early return must not leave it).
pub struct Reap(pub Child);

impl Drop for Reap {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_are_read_like_a_browser() {
        let html = r#"<p>x</p><form method="post" action="/authorize/password"><input type="hidden" name="tx" value="a&amp;b"><input name="username"><input type="password" name="password"><button>go</button></form>"#;
        let mut f = Form::parse(html).unwrap();
        assert_eq!(f.action, "/authorize/password");
        assert_eq!(f.fields[0], ("tx".into(), "a&b".into()));
        f.set("username", "demo").unwrap();
        assert_eq!(f.fields[1], ("username".into(), "demo".into()));
        assert!(f.set("nope", "x").is_err());
        assert!(Form::parse("<p>no form</p>").is_err());
    }
}

//! A throwaway Kannel for tests: writes a configuration in a temporary
//! directory and runs `bearerbox`, `smsbox` and `fakesmsc` (Debian's
//! `kannel` and `kannel-extras`) on ephemeral 127.0.0.1 ports. A test
//! texts the short code as a customer's phone ([`TestKannel::send_mo`]),
//! reads what the phone received ([`TestKannel::wait_messages`]), and
//! stops and restarts the gateway ([`TestKannel::stop`],
//! [`TestKannel::start_again`]) for outages. Everything is killed on drop,
//! also when the test panics.
//!
//! Missing binaries are an error naming the packages, never a skipped
//! test.

use std::fmt;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The `sendsms-user` the configuration declares.
pub const USERNAME: &str = "pooya";
/// Its password (a test's throwaway gateway; the issuer reads it from
/// [`TestKannel::password_file`]).
pub const PASSWORD: &str = "test-kannel-sendsms-password";
/// The admin password of the throwaway bearerbox.
const ADMIN_PASSWORD: &str = "test-kannel-admin";
/// How long a start may take.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// A harness failure: what went wrong, with the processes' last output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HarnessError(pub String);

impl fmt::Display for HarnessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HarnessError {}

fn err<T>(s: impl Into<String>) -> Result<T, HarnessError> {
    Err(HarnessError(s.into()))
}

/// Where a Kannel binary is: on `PATH`, or where Debian installs it.
fn binary(name: &str, debian: &str) -> Result<PathBuf, HarnessError> {
    let on_path = std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(name))
            .find(|c| c.is_file())
    });
    match on_path {
        Some(p) => Ok(p),
        None if Path::new(debian).is_file() => Ok(PathBuf::from(debian)),
        None => err(format!(
            "{name} not found (on PATH or at {debian}): install Debian's kannel and \
             kannel-extras packages (apt-get install kannel kannel-extras)"
        )),
    }
}

/// A free port on 127.0.0.1 (bound, read, released).
fn free_port() -> Result<u16, HarnessError> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .or_else(|e| err(format!("no free port: {e}")))
}

/// The coding fakesmsc reports for a message part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    /// Printable ASCII, as is.
    Text,
    /// Bytes (fakesmsc's `data`; also every part with a UDH, whose coding
    /// its line does not give).
    Data,
    /// UCS-2 (fakesmsc's `ucs-2`).
    Ucs2,
}

/// One SMS part the fake SMS centre received (an MT message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MtPart {
    /// The sender shown.
    pub from: String,
    /// The recipient.
    pub to: String,
    /// The user data header (concatenation), if any.
    pub udh: Option<Vec<u8>>,
    /// The part's bytes.
    pub data: Vec<u8>,
    /// Their coding.
    pub coding: Coding,
}

/// An MT message, its parts joined (3GPP TS 23.040 §9.2.3.24.1
/// concatenation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mt {
    /// The sender shown.
    pub from: String,
    /// The recipient.
    pub to: String,
    /// The message's bytes.
    pub data: Vec<u8>,
    /// The parts it came in.
    pub parts: usize,
}

impl Mt {
    /// The text, for a message sent as UCS-2 (`coding=2`): its bytes as
    /// UTF-16 big-endian.
    ///
    /// # Errors
    /// When the bytes are not UTF-16BE.
    pub fn ucs2_text(&self) -> Result<String, HarnessError> {
        if !self.data.len().is_multiple_of(2) {
            return err("an odd number of UCS-2 bytes");
        }
        let units: Vec<u16> = self
            .data
            .chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect();
        String::from_utf16(&units).or_else(|_| err("not UTF-16BE"))
    }
}

/// fakesmsc's URL decoding of its lines: `+` is a space, `%XX` a byte.
fn url_decode(s: &str) -> Result<Vec<u8>, HarnessError> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = s
                    .get(i + 1..i + 3)
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(v) => out.push(v),
                    None => return err(format!("bad escape in {s:?}")),
                }
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    Ok(out)
}

/// Parses the message of a fakesmsc output line `… Got message N: <from
/// to type data>`, where type is `text`, `data`, `ucs-2`, or `udh UDH`
/// followed by one of those.
pub fn parse_line(line: &str) -> Option<Result<MtPart, HarnessError>> {
    let start = line.find("Got message ")?;
    let rest = &line[start..];
    let open = rest.find(": <")?;
    let body = rest[open + 3..].strip_suffix('>')?;
    Some(parse_body(body))
}

fn parse_body(body: &str) -> Result<MtPart, HarnessError> {
    let mut it = body.splitn(3, ' ');
    let (Some(from), Some(to), Some(rest)) = (it.next(), it.next(), it.next()) else {
        return err(format!(
            "a fakesmsc line without from, to and type: {body:?}"
        ));
    };
    let (udh, rest) = match rest.strip_prefix("udh ") {
        Some(r) => {
            let (u, r) = r
                .split_once(' ')
                .ok_or_else(|| HarnessError(format!("a udh line without data: {body:?}")))?;
            (Some(url_decode(u)?), r)
        }
        None => (None, rest),
    };
    let (kind, data) = rest.split_once(' ').unwrap_or((rest, ""));
    let (coding, data) = match kind {
        "text" => (Coding::Text, data.as_bytes().to_vec()),
        "data" => (Coding::Data, url_decode(data)?),
        "ucs-2" | "ucs2" => (Coding::Ucs2, url_decode(data)?),
        other => return err(format!("fakesmsc type {other:?} in {body:?}")),
    };
    Ok(MtPart {
        from: from.to_owned(),
        to: to.to_owned(),
        udh,
        data,
        coding,
    })
}

/// The concatenation of a UDH: (reference, total, sequence).
fn concat_of(udh: &[u8]) -> Option<(u16, u8, u8)> {
    let len = usize::from(*udh.first()?);
    let ies = udh.get(1..1 + len)?;
    let mut i = 0;
    while i + 1 < ies.len() {
        let (iei, l) = (ies[i], usize::from(ies[i + 1]));
        let v = ies.get(i + 2..i + 2 + l)?;
        match (iei, v) {
            (0x00, [r, t, s]) => return Some((u16::from(*r), *t, *s)),
            (0x08, [r1, r2, t, s]) => return Some((u16::from_be_bytes([*r1, *r2]), *t, *s)),
            _ => {}
        }
        i += 2 + l;
    }
    None
}

/// A concatenated message's parts: sender, recipient, reference, total.
type PartKey = (String, String, u16, u8);

/// Joins parts into messages, in the order each was completed.
pub fn join_parts(parts: &[MtPart]) -> Vec<Mt> {
    let mut out = Vec::new();
    let mut open: Vec<(PartKey, Vec<Option<Vec<u8>>>)> = Vec::new();
    for p in parts {
        let Some((r, total, seq)) = p.udh.as_deref().and_then(concat_of) else {
            out.push(Mt {
                from: p.from.clone(),
                to: p.to.clone(),
                data: p.data.clone(),
                parts: 1,
            });
            continue;
        };
        let key = (p.from.clone(), p.to.clone(), r, total);
        let i = match open.iter().position(|(k, _)| *k == key) {
            Some(i) => i,
            None => {
                open.push((key.clone(), vec![None; usize::from(total)]));
                open.len() - 1
            }
        };
        if let Some(slot) = open[i].1.get_mut(usize::from(seq).wrapping_sub(1)) {
            *slot = Some(p.data.clone());
        }
        if open[i].1.iter().all(Option::is_some) {
            let (_, chunks) = open.swap_remove(i);
            out.push(Mt {
                from: p.from.clone(),
                to: p.to.clone(),
                data: chunks.into_iter().flatten().flatten().collect(),
                parts: usize::from(total),
            });
        }
    }
    out
}

struct Running {
    bearerbox: Child,
    smsbox: Child,
    fakesmsc: Child,
    stdin: ChildStdin,
}

impl Running {
    fn kill(mut self) {
        for c in [&mut self.fakesmsc, &mut self.smsbox, &mut self.bearerbox] {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A running throwaway Kannel.
pub struct TestKannel {
    dir: tempfile::TempDir,
    conf: PathBuf,
    /// The bearerbox admin port.
    pub admin_port: u16,
    /// The bearerbox port smsbox connects to.
    pub smsbox_port: u16,
    /// smsbox's `sendsms` port.
    pub sendsms_port: u16,
    /// The fake SMS centre's port (fakesmsc connects to it).
    pub smsc_port: u16,
    running: Mutex<Option<Running>>,
    received: Arc<Mutex<Vec<MtPart>>>,
    output: Arc<Mutex<Vec<String>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl TestKannel {
    /// Writes the configuration and starts the three processes; returns
    /// once bearerbox has its SMS centre and smsbox online and `sendsms`
    /// accepts connections. Every message texted to any number is handed
    /// to `get_url` (a Kannel `get-url`, with its `%` escapes), whose
    /// answer is never sent back (`max-messages = 0`).
    ///
    /// # Errors
    /// Missing binaries (naming the packages), or a process that does not
    /// become ready within 20 s (with its output).
    pub fn start(get_url: &str) -> Result<Self, HarnessError> {
        let dir = tempfile::tempdir().or_else(|e| err(format!("temp dir: {e}")))?;
        let (admin_port, smsbox_port, sendsms_port, smsc_port) =
            (free_port()?, free_port()?, free_port()?, free_port()?);
        let d = dir.path();
        std::fs::create_dir_all(d.join("spool")).or_else(|e| err(format!("spool: {e}")))?;
        let conf = d.join("kannel.conf");
        let text = format!(
            "group = core\n\
             admin-port = {admin_port}\n\
             admin-password = {ADMIN_PASSWORD}\n\
             admin-interface = 127.0.0.1\n\
             admin-allow-ip = 127.0.0.1\n\
             smsbox-port = {smsbox_port}\n\
             smsbox-interface = 127.0.0.1\n\
             box-allow-ip = 127.0.0.1\n\
             log-file = \"{log}/bearerbox.log\"\n\
             log-level = 1\n\
             dlr-storage = internal\n\
             store-type = spool\n\
             store-location = \"{log}/spool\"\n\
             \n\
             group = smsc\n\
             smsc = fake\n\
             smsc-id = fake\n\
             port = {smsc_port}\n\
             our-host = 127.0.0.1\n\
             connect-allow-ip = 127.0.0.1\n\
             \n\
             group = smsbox\n\
             bearerbox-host = 127.0.0.1\n\
             bearerbox-port = {smsbox_port}\n\
             sendsms-port = {sendsms_port}\n\
             sendsms-interface = 127.0.0.1\n\
             log-file = \"{log}/smsbox.log\"\n\
             log-level = 1\n\
             mo-recode = true\n\
             \n\
             group = sendsms-user\n\
             username = {USERNAME}\n\
             password = {PASSWORD}\n\
             concatenation = true\n\
             max-messages = 10\n\
             \n\
             group = sms-service\n\
             keyword = default\n\
             catch-all = true\n\
             max-messages = 0\n\
             get-url = \"{get_url}\"\n",
            log = d.display(),
        );
        std::fs::write(&conf, text).or_else(|e| err(format!("writing kannel.conf: {e}")))?;
        std::fs::write(d.join("sendsms-password"), PASSWORD)
            .or_else(|e| err(format!("writing the password file: {e}")))?;
        let k = Self {
            dir,
            conf,
            admin_port,
            smsbox_port,
            sendsms_port,
            smsc_port,
            running: Mutex::new(None),
            received: Arc::new(Mutex::new(Vec::new())),
            output: Arc::new(Mutex::new(Vec::new())),
        };
        k.start_again()?;
        Ok(k)
    }

    /// smsbox's `sendsms` URL.
    pub fn sendsms_url(&self) -> String {
        format!("http://127.0.0.1:{}/cgi-bin/sendsms", self.sendsms_port)
    }

    /// A file holding the `sendsms-user` password.
    pub fn password_file(&self) -> PathBuf {
        self.dir.path().join("sendsms-password")
    }

    /// The temporary directory (configuration, logs).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn spawn(
        &self,
        bin: &Path,
        args: &[&std::ffi::OsStr],
        name: &str,
    ) -> Result<Child, HarnessError> {
        let mut child = Command::new(bin)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .or_else(|e| err(format!("starting {}: {e}", bin.display())))?;
        let outs: [Option<Box<dyn std::io::Read + Send>>; 2] = [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        ];
        for out in outs.into_iter().flatten() {
            let received = Arc::clone(&self.received);
            let output = Arc::clone(&self.output);
            let name = name.to_owned();
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines() {
                    let Ok(line) = line else { break };
                    if name == "fakesmsc"
                        && let Some(Ok(part)) = parse_line(&line)
                    {
                        lock(&received).push(part);
                    }
                    let mut o = lock(&output);
                    o.push(format!("{name}: {line}"));
                    let n = o.len();
                    if n > 400 {
                        o.drain(..n - 400);
                    }
                }
            });
        }
        Ok(child)
    }

    fn status(&self) -> Option<String> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(2)))
            .build()
            .into();
        agent
            .get(&format!(
                "http://127.0.0.1:{}/status.txt?password={ADMIN_PASSWORD}",
                self.admin_port
            ))
            .call()
            .ok()?
            .body_mut()
            .read_to_string()
            .ok()
    }

    fn wait_for(&self, what: &str, ok: impl Fn(&Self) -> bool) -> Result<(), HarnessError> {
        let start = Instant::now();
        while start.elapsed() < READY_TIMEOUT {
            if ok(self) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        err(format!(
            "Kannel: {what} not ready after {READY_TIMEOUT:?}; last output:\n{}\nbearerbox.log:\n{}",
            lock(&self.output).join("\n"),
            std::fs::read_to_string(self.dir.path().join("bearerbox.log"))
                .unwrap_or_default()
                .lines()
                .rev()
                .take(30)
                .collect::<Vec<_>>()
                .join("\n")
        ))
    }

    /// (Re)starts bearerbox, smsbox and fakesmsc (after [`TestKannel::stop`];
    /// [`TestKannel::start`] calls it first).
    ///
    /// # Errors
    /// As [`TestKannel::start`].
    pub fn start_again(&self) -> Result<(), HarnessError> {
        let bearerbox = binary("bearerbox", "/usr/sbin/bearerbox")?;
        let smsbox = binary("smsbox", "/usr/sbin/smsbox")?;
        let fakesmsc = binary("fakesmsc", "/usr/lib/kannel/test/fakesmsc")?;
        let mut running = lock(&self.running);
        if running.is_some() {
            return Ok(());
        }
        let conf = self.conf.as_os_str();
        let mut bb = self.spawn(&bearerbox, &[conf], "bearerbox")?;
        let ready = self.wait_for("bearerbox", |k| k.status().is_some());
        if let Err(e) = ready {
            let _ = bb.kill();
            let _ = bb.wait();
            return Err(e);
        }
        let sb = self.spawn(&smsbox, &[conf], "smsbox");
        let port = self.smsc_port.to_string();
        let fs = self.spawn(
            &fakesmsc,
            &[
                "-H".as_ref(),
                "127.0.0.1".as_ref(),
                "-r".as_ref(),
                port.as_ref(),
            ],
            "fakesmsc",
        );
        let (mut sb, mut fs) = match (sb, fs) {
            (Ok(sb), Ok(fs)) => (sb, fs),
            (sb, fs) => {
                for mut c in [sb.ok(), fs.ok(), Some(bb)].into_iter().flatten() {
                    let _ = c.kill();
                    let _ = c.wait();
                }
                return err("smsbox or fakesmsc did not start");
            }
        };
        let Some(stdin) = fs.stdin.take() else {
            for c in [&mut fs, &mut sb, &mut bb] {
                let _ = c.kill();
                let _ = c.wait();
            }
            return err("fakesmsc has no stdin");
        };
        let r = Running {
            bearerbox: bb,
            smsbox: sb,
            fakesmsc: fs,
            stdin,
        };
        let ready = self.wait_for("the SMS centre and smsbox", |k| {
            k.status().is_some_and(|s| {
                let boxes = s.split("Box connections:").nth(1).unwrap_or_default();
                s.contains("fake[fake]") && s.contains("(online") && boxes.contains("smsbox:")
            }) && TcpStream::connect(("127.0.0.1", k.sendsms_port)).is_ok()
        });
        if let Err(e) = ready {
            r.kill();
            return Err(e);
        }
        *running = Some(r);
        Ok(())
    }

    /// Stops the gateway: kills bearerbox, and smsbox and fakesmsc with it
    /// (smsbox ends itself when bearerbox goes). `sendsms` then refuses
    /// connections until [`TestKannel::start_again`].
    pub fn stop(&self) {
        if let Some(r) = lock(&self.running).take() {
            r.kill();
        }
    }

    /// Texts `text` to `to` from the phone `from` through the fake SMS
    /// centre, as UCS-2 (so Persian digits arrive as a phone sends them).
    ///
    /// # Errors
    /// When the gateway is stopped or fakesmsc's input is closed.
    pub fn send_mo(&self, from: &str, to: &str, text: &str) -> Result<(), HarnessError> {
        let mut data = String::new();
        for unit in text.encode_utf16() {
            for b in unit.to_be_bytes() {
                data.push_str(&format!("%{b:02X}"));
            }
        }
        let mut running = lock(&self.running);
        let Some(r) = running.as_mut() else {
            return err("the gateway is stopped");
        };
        writeln!(r.stdin, "{from} {to} ucs2 {data}")
            .and_then(|()| r.stdin.flush())
            .or_else(|e| err(format!("writing to fakesmsc: {e}")))
    }

    /// Every part the fake SMS centre received so far.
    pub fn parts(&self) -> Vec<MtPart> {
        lock(&self.received).clone()
    }

    /// Every complete message received so far.
    pub fn messages(&self) -> Vec<Mt> {
        join_parts(&self.parts())
    }

    /// Waits until `n` complete messages to `to` arrived (within
    /// `timeout`) and returns all messages to `to`.
    ///
    /// # Errors
    /// When fewer arrive in time (with the processes' last output).
    pub fn wait_messages(
        &self,
        to: &str,
        n: usize,
        timeout: Duration,
    ) -> Result<Vec<Mt>, HarnessError> {
        let start = Instant::now();
        loop {
            let got: Vec<Mt> = self.messages().into_iter().filter(|m| m.to == to).collect();
            if got.len() >= n {
                return Ok(got);
            }
            if start.elapsed() > timeout {
                return err(format!(
                    "{} of {n} messages to {to} after {timeout:?}; last output:\n{}",
                    got.len(),
                    lock(&self.output).join("\n")
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for TestKannel {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn fakesmsc_lines_parse_and_join() {
        let single = "2026-12-01 19:51:07 [1] [0] DEBUG: Got message 1: \
                      <30003303 09121234567 ucs-2 %061%06E%062%00+%06%F1%06%F2>";
        let p = parse_line(single).unwrap().unwrap();
        assert_eq!(
            (p.from.as_str(), p.to.as_str(), p.coding),
            ("30003303", "09121234567", Coding::Ucs2)
        );
        let m = join_parts(&[p]);
        assert_eq!(m[0].ucs2_text().unwrap(), "رمز ۱۲");
        let one = "DEBUG: Got message 1: <1 2 udh %05%00%03%07%02%01 data %061%06E>";
        let two = "DEBUG: Got message 2: <1 2 udh %05%00%03%07%02%02 data %062>";
        let parts: Vec<MtPart> = [two, one]
            .iter()
            .map(|l| parse_line(l).unwrap().unwrap())
            .collect();
        assert_eq!(join_parts(&parts[..1]), vec![]);
        let joined = join_parts(&parts);
        assert_eq!(joined.len(), 1);
        assert_eq!(joined[0].parts, 2);
        assert_eq!(joined[0].data, vec![0x06, 0x31, 0x06, 0x45, 0x06, 0x32]);
        assert_eq!(parse_line("INFO: fakesmsc starting"), None);
        assert!(parse_line("Got message 3: <1 2 weird x>").unwrap().is_err());
        let text = parse_line("Got message 4: <1 2 text hello world>")
            .unwrap()
            .unwrap();
        assert_eq!(
            (text.data.as_slice(), text.coding),
            (&b"hello world"[..], Coding::Text)
        );
    }
}

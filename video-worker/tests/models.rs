//! `video-worker models` end to end: the real binary, a catalogue of its own, and a tiny HTTP
//! server on 127.0.0.1 serving a generated model file (whole, cut off, or not at all).

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Output};

use sha2::{Digest, Sha256};

/// A generated "model": deterministic bytes, large enough to arrive in several chunks.
fn model_bytes() -> Vec<u8> {
    let mut x = 0x2545_f491_u32;
    (0..300_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Serves `body` at any path: declares its full length but sends only the first `send`
/// bytes, then closes. Returns the URL.
fn serve(body: Vec<u8>, send: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            respond(stream, &body, send);
        }
    });
    format!("http://127.0.0.1:{port}/onnx/model.onnx")
}

fn respond(mut stream: TcpStream, body: &[u8], send: usize) {
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(&body[..send]);
    let _ = stream.flush();
    let _ = stream.shutdown(std::net::Shutdown::Both);
}

/// A URL on a port where nothing listens.
fn dead_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}/onnx/model.onnx")
}

/// A scratch folder with a catalogue listing one model, "tiny", and an empty models folder.
struct Setup {
    _tmp: tempfile::TempDir,
    catalogue: PathBuf,
    models: PathBuf,
}

impl Setup {
    fn new(url: &str, sha256: &str, size: Option<usize>) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let catalogue = tmp.path().join("catalogue.toml");
        let size = size.map(|s| format!("size = {s}\n")).unwrap_or_default();
        std::fs::write(
            &catalogue,
            format!(
                "[[model]]\nname = \"tiny\"\nfile = \"tiny.onnx\"\nurl = \"{url}\"\nsha256 = \"{sha256}\"\n{size}licence = \"Apache-2.0\"\nkind = \"frame\"\ninput_size = 518\n\n[[model]]\nname = \"other\"\nfile = \"other.onnx\"\nurl = \"\"\nlicence = \"MIT\"\nkind = \"temporal\"\ninput_size = 518\nwindow = 32\n"
            ),
        )
        .unwrap();
        let models = tmp.path().join("models");
        std::fs::create_dir(&models).unwrap();
        Setup {
            _tmp: tmp,
            catalogue,
            models,
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        let out = Command::new(env!("CARGO_BIN_EXE_video-worker"))
            .arg("models")
            .arg("--catalogue")
            .arg(&self.catalogue)
            .arg("--models-dir")
            .arg(&self.models)
            .args(args)
            .env_remove("MODEL_CATALOGUE")
            .env_remove("MODELS_DIR")
            .env_remove("MODELS_ALLOW_UNPINNED")
            .env_remove("HTTP_PROXY")
            .env_remove("http_proxy")
            .env_remove("ALL_PROXY")
            .env_remove("all_proxy")
            .env("NO_PROXY", "127.0.0.1")
            .env("RUST_BACKTRACE", "0")
            .env("RUST_LIB_BACKTRACE", "0")
            .output()
            .expect("running video-worker");
        eprintln!(
            "models {args:?}: {}\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// The names in the models folder (hidden temporary files included).
    fn files(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.models)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    fn installed(&self) -> PathBuf {
        self.models.join("tiny.onnx")
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn line_of<'a>(text: &'a str, name: &str) -> &'a str {
    text.lines()
        .find(|l| l.starts_with(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no line for {name} in:\n{text}"))
}

#[test]
fn fetch_with_the_right_checksum_installs_and_list_and_verify_agree() {
    let body = model_bytes();
    let s = Setup::new(
        &serve(body.clone(), body.len()),
        &sha256(&body),
        Some(body.len()),
    );

    let list = s.run(&["list"]);
    assert!(list.status.success());
    assert!(line_of(&stdout(&list), "tiny").contains("missing"));

    let fetch = s.run(&["fetch", "tiny"]);
    assert!(fetch.status.success());
    assert!(stdout(&fetch).contains("checksum ok"), "{}", stdout(&fetch));
    assert_eq!(std::fs::read(s.installed()).unwrap(), body);
    assert_eq!(s.files(), ["tiny.onnx"]);

    let list = s.run(&["list"]);
    assert!(list.status.success());
    let line = line_of(&stdout(&list), "tiny").to_string();
    assert!(line.contains("present, checksum ok"), "{line}");
    assert!(line.contains("frame") && line.contains("Apache-2.0") && line.contains("KiB"));
    assert!(line_of(&stdout(&list), "other").contains("temporal/32"));
    assert!(s.run(&["verify"]).status.success());

    // A second fetch finds it in place and downloads nothing.
    let again = s.run(&["fetch", "tiny"]);
    assert!(again.status.success());
    assert!(stdout(&again).contains("already present"));

    // A changed file: list says so and verify fails.
    let mut changed = body.clone();
    changed[1000] ^= 1;
    std::fs::write(s.installed(), &changed).unwrap();
    let list = s.run(&["list"]);
    assert!(line_of(&stdout(&list), "tiny").contains("CHECKSUM MISMATCH"));
    let verify = s.run(&["verify"]);
    assert!(!verify.status.success());
    assert!(
        stdout(&verify).contains("tiny: MISMATCH"),
        "{}",
        stdout(&verify)
    );
    assert!(stderr(&verify).contains("do not match the catalogue: tiny"));

    // fetch replaces the changed file with a checked download.
    assert!(s.run(&["fetch", "tiny"]).status.success());
    assert_eq!(std::fs::read(s.installed()).unwrap(), body);
    assert!(s.run(&["verify", "tiny"]).status.success());
}

#[test]
fn a_wrong_checksum_is_refused_and_leaves_nothing() {
    let body = model_bytes();
    let s = Setup::new(
        &serve(body.clone(), body.len()),
        &sha256(b"some other file"),
        None,
    );
    let fetch = s.run(&["fetch", "tiny"]);
    assert!(!fetch.status.success());
    let err = stderr(&fetch);
    assert!(err.contains("checksum mismatch"), "{err}");
    assert!(err.contains(&sha256(&body)), "{err}");
    assert!(err.contains("nothing was installed"), "{err}");
    assert!(s.files().is_empty(), "{:?}", s.files());
}

#[test]
fn a_cut_off_download_is_refused_and_leaves_nothing() {
    let body = model_bytes();
    let url = serve(body.clone(), body.len() / 3);
    let s = Setup::new(&url, &sha256(&body), Some(body.len()));
    let fetch = s.run(&["fetch", "tiny"]);
    assert!(!fetch.status.success());
    let err = stderr(&fetch);
    assert!(err.contains("cut off"), "{err}");
    assert!(err.contains(&url), "{err}");
    assert!(err.contains("nothing was installed"), "{err}");
    assert!(s.files().is_empty(), "{:?}", s.files());
}

#[test]
fn a_server_that_is_down_gives_the_manual_step() {
    let url = dead_url();
    let s = Setup::new(&url, &sha256(b"x"), None);
    let fetch = s.run(&["fetch", "tiny"]);
    assert!(!fetch.status.success());
    let err = stderr(&fetch);
    let dest = s.installed();
    assert!(
        err.contains(&format!("could not download tiny from {url}")),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "Download {url} yourself and put it at {}, then run `video-worker models verify`",
            dest.display()
        )),
        "{err}"
    );
    assert!(s.files().is_empty(), "{:?}", s.files());
}

#[test]
fn unknown_names_and_unpinned_models_are_explained() {
    let body = model_bytes();
    let s = Setup::new(&serve(body.clone(), body.len()), "", None);

    let unknown = s.run(&["fetch", "nope"]);
    assert!(!unknown.status.success());
    assert!(stderr(&unknown).contains("unknown model \"nope\"; known models: tiny, other"));

    let no_url = s.run(&["fetch", "other"]);
    assert!(!no_url.status.success());
    assert!(stderr(&no_url).contains("no download URL is known for other"));

    let refused = s.run(&["fetch", "tiny"]);
    assert!(!refused.status.success());
    assert!(stderr(&refused).contains("--allow-unpinned"));
    assert!(s.files().is_empty());

    let fetch = s.run(&["fetch", "tiny", "--allow-unpinned"]);
    assert!(fetch.status.success());
    let out = stdout(&fetch);
    assert!(
        out.contains(&format!("sha256 = \"{}\"", sha256(&body))),
        "{out}"
    );
    assert!(out.contains(&format!("size = {}", body.len())), "{out}");
    assert_eq!(std::fs::read(s.installed()).unwrap(), body);
    let list = s.run(&["list"]);
    assert!(line_of(&stdout(&list), "tiny").contains("not pinned"));
    assert!(s.run(&["verify"]).status.success());
}

//! The catalogue of known depth models (`models/catalogue.toml`): each model's name, file,
//! download URL, sha256, size, licence, contract kind and native input size. The video-worker
//! lists, downloads and verifies model files with it, and holds the models it names; the
//! web-ui refuses a job whose `settings.model` it does not name, before any work is done.

use std::fs::File;
use std::io::Read as _;
use std::path::Path;

use serde::Deserialize;
use sha2::{Digest, Sha256};

/// Where the catalogue is when nothing says otherwise (relative to the working folder: the
/// repository root for `make up`).
pub const DEFAULT_PATH: &str = "models/catalogue.toml";

/// A catalogue that cannot be read, a name it does not know, a model file that cannot be read:
/// the message says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CatalogueError(pub String);

type Result<T> = std::result::Result<T, CatalogueError>;

macro_rules! bail {
    ($($arg:tt)*) => { return Err(CatalogueError(format!($($arg)*))) };
}

/// What a model does with frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// One frame at a time: `[N,3,H,W]` -> `[N,H,W]`.
    Frame,
    /// Windows of T frames: `[N,T,3,H,W]` -> `[N,T,H,W]`.
    Temporal,
}

/// One known model.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelEntry {
    /// What jobs (`settings.model`) and `video-worker models fetch NAME` call it.
    pub name: String,
    /// File name inside the models folder.
    pub file: String,
    /// An http(s) URL, `"bundled"` (committed to the repository) or `""` (no download known).
    pub url: String,
    /// Lowercase hex sha256; empty = not pinned yet.
    #[serde(default)]
    pub sha256: String,
    /// Bytes; absent while unpinned.
    pub size: Option<u64>,
    /// SPDX identifier of the weights' licence.
    pub licence: String,
    /// Which contract the model follows.
    pub kind: ModelKind,
    /// Native input size (short side, pixels).
    pub input_size: u32,
    /// Frames per window (temporal models).
    pub window: Option<u32>,
    /// Shown by `list` and in `fetch` errors.
    pub note: Option<String>,
}

/// Where a model's file comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source<'a> {
    /// Committed to the repository.
    Bundled,
    /// No download is known.
    Unknown,
    /// Downloaded from this http(s) URL.
    Url(&'a str),
}

impl ModelEntry {
    /// Where the file comes from.
    pub fn source(&self) -> Source<'_> {
        match self.url.as_str() {
            "bundled" => Source::Bundled,
            "" => Source::Unknown,
            url => Source::Url(url),
        }
    }

    /// Whether the catalogue pins the file's sha256.
    pub fn pinned(&self) -> bool {
        !self.sha256.is_empty()
    }

    /// The kind in a word (`frame`, `temporal/32`).
    pub fn kind_label(&self) -> String {
        match (self.kind, self.window) {
            (ModelKind::Frame, _) => "frame".into(),
            (ModelKind::Temporal, Some(t)) => format!("temporal/{t}"),
            (ModelKind::Temporal, None) => "temporal".into(),
        }
    }
}

/// The parsed catalogue file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalogue {
    #[serde(rename = "model", default)]
    /// Every known model, names unique.
    pub models: Vec<ModelEntry>,
}

impl Catalogue {
    /// Reads and checks a catalogue file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            CatalogueError(format!(
                "reading the model catalogue {}: {e} (pass --catalogue or MODEL_CATALOGUE, or run from the repository root)",
                path.display()
            ))
        })?;
        Self::parse(&text)
            .map_err(|e| CatalogueError(format!("in the model catalogue {}: {e}", path.display())))
    }

    /// Parses catalogue text and checks every entry.
    pub fn parse(text: &str) -> Result<Self> {
        let cat: Catalogue = toml::from_str(text).map_err(|e| CatalogueError(e.to_string()))?;
        let mut seen = std::collections::HashSet::new();
        for m in &cat.models {
            if !seen.insert(m.name.as_str()) {
                bail!("the model name {:?} appears twice", m.name);
            }
            let plain = Path::new(&m.file)
                .file_name()
                .is_some_and(|f| f == m.file.as_str());
            if !plain || m.file.starts_with('.') {
                bail!(
                    "model {:?}: file {:?} must be a plain file name inside the models folder",
                    m.name,
                    m.file
                );
            }
            if m.pinned()
                && (m.sha256.len() != 64
                    || !m
                        .sha256
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
            {
                bail!("model {:?}: sha256 must be 64 lowercase hex digits, or \"\" for not pinned yet", m.name);
            }
            if let Source::Url(url) = m.source() {
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    bail!(
                        "model {:?}: url must be http(s)://..., \"bundled\" or \"\"",
                        m.name
                    );
                }
            }
            if m.kind == ModelKind::Temporal && m.window.is_none() {
                bail!(
                    "model {:?}: a temporal model needs `window` (frames per window)",
                    m.name
                );
            }
        }
        Ok(cat)
    }

    /// The entry called `name`, or an error listing the known names.
    pub fn get(&self, name: &str) -> Result<&ModelEntry> {
        self.models.iter().find(|m| m.name == name).ok_or_else(|| {
            CatalogueError(format!(
                "unknown model {name:?}; known models: {}",
                self.models
                    .iter()
                    .map(|m| m.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
    }
}

/// What is in the models folder for one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileState {
    /// Not in the models folder.
    Missing,
    /// Present and matching the pinned sha256 and size.
    Verified,
    /// Present, but its digest or size differs from the catalogue.
    Mismatch {
        /// The file's sha256.
        sha256: String,
        /// The file's size in bytes.
        size: u64,
    },
    /// Present; the catalogue pins nothing to compare with.
    Unpinned {
        /// The file's sha256.
        sha256: String,
        /// The file's size in bytes.
        size: u64,
    },
}

/// sha256 (lowercase hex) and size of a file.
pub fn hash_file(path: &Path) -> Result<(String, u64)> {
    let read_err = |e: std::io::Error| CatalogueError(format!("reading {}: {e}", path.display()));
    let mut f = File::open(path).map_err(read_err)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(read_err)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), size))
}

/// Checks the entry's file in `dir`.
pub fn check(entry: &ModelEntry, dir: &Path) -> Result<FileState> {
    let path = dir.join(&entry.file);
    if !path.is_file() {
        return Ok(FileState::Missing);
    }
    let (sha256, size) = hash_file(&path)?;
    Ok(if !entry.pinned() {
        FileState::Unpinned { sha256, size }
    } else if sha256 == entry.sha256 && entry.size.is_none_or(|s| s == size) {
        FileState::Verified
    } else {
        FileState::Mismatch { sha256, size }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn repo_models() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../models")
    }

    #[test]
    fn committed_catalogue_parses_and_default_matches_its_file() {
        let dir = repo_models();
        let cat = Catalogue::load(&dir.join("catalogue.toml")).unwrap();
        for name in [
            "default",
            "depth-anything-v2-small",
            "video-depth-anything-small",
        ] {
            cat.get(name).unwrap();
        }
        let default = cat.get("default").unwrap();
        assert_eq!(default.source(), Source::Bundled);
        assert_eq!(default.file, "default-depth.onnx");
        assert_eq!(check(default, &dir).unwrap(), FileState::Verified);
        let vda = cat.get("video-depth-anything-small").unwrap();
        assert_eq!(vda.kind, ModelKind::Temporal);
        let da = cat.get("depth-anything-v2-small").unwrap();
        assert_eq!(da.kind, ModelKind::Frame);
        assert!(matches!(da.source(), Source::Url(u) if u.starts_with("https://")));
    }

    #[test]
    fn unknown_name_lists_the_known_ones() {
        let cat = Catalogue::load(&repo_models().join("catalogue.toml")).unwrap();
        let err = cat.get("nope").unwrap_err().to_string();
        assert!(err.contains("unknown model \"nope\""), "{err}");
        assert!(err.contains("default, depth-anything-v2-small"), "{err}");
    }

    #[test]
    fn bad_entries_are_refused() {
        let base = "name = \"x\"\nurl = \"\"\nlicence = \"MIT\"\ninput_size = 518\n";
        let bad = [
            "file = \"../x.onnx\"\nkind = \"frame\"\n",
            "file = \"x.onnx\"\nkind = \"frame\"\nsha256 = \"ABC\"\n",
            "file = \"x.onnx\"\nkind = \"temporal\"\n",
        ];
        for extra in bad {
            let text = format!("[[model]]\n{base}{extra}");
            assert!(Catalogue::parse(&text).is_err(), "{text}");
        }
        let ok = format!("[[model]]\n{base}file = \"x.onnx\"\nkind = \"frame\"\n");
        Catalogue::parse(&ok).unwrap();
    }
}

//! The tests' tiny models (written once per test process by `models/make_models.py`), and
//! engines on them set up as every test wants them (one thread, the fastest encoder preset).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use parallax_engine::{Engine, EngineConfig};

/// The workspace's root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the crate is in the workspace")
        .to_path_buf()
}

/// The tests' tiny models, written once per test process by the models script.
pub fn models() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let python = std::env::var_os("PYTHON")
            .map(PathBuf::from)
            .unwrap_or_else(|| repo().join(".venv/bin/python"));
        assert!(
            python.exists(),
            "{} is missing: run `make venv` (the models script needs onnx and numpy)",
            python.display()
        );
        let dir = tempfile::tempdir().unwrap();
        let st = Command::new(&python)
            .arg(repo().join("models/make_models.py"))
            .arg("--test-models")
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(st.success(), "models/make_models.py failed");
        dir
    })
    .path()
}

/// The test model `name`.
pub fn model(name: &str) -> PathBuf {
    models().join(name)
}

/// The tests' configuration for the test model `name`: one ONNX Runtime thread, the fastest
/// encoder preset, batch 1.
pub fn config(name: &str) -> EngineConfig {
    let mut cfg = EngineConfig::new(model(name));
    cfg.intra_threads = Some(1);
    cfg.preset = Some("ultrafast".to_owned());
    cfg
}

/// The engine `cfg` sets up; a model that does not load fails the test, saying why.
pub fn load(cfg: &EngineConfig) -> Engine {
    Engine::load(cfg).unwrap_or_else(|e| panic!("loading {}: {e:#}", cfg.model.display()))
}

/// An engine on the test model `name` (see [`config`]) running `batch` frames at a time.
pub fn engine(name: &str, batch: usize) -> Engine {
    let mut cfg = config(name);
    cfg.batch_size = batch;
    load(&cfg)
}

/// Why the test model `name` does not load (it must not), the whole error chain.
pub fn load_error(name: &str) -> String {
    let err = Engine::load(&EngineConfig::new(model(name))).unwrap_err();
    format!("{err:#}")
}

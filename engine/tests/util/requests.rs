//! The tests' conversion request, and the normalisation state a conversion ends with.

use std::path::Path;
use std::sync::{Arc, Mutex};

use parallax_core::model::{ConversionSettings, StereoMode};
use parallax_engine::{ConvertRequest, NormState, StateSink};

/// A conversion of `input` to `output` in `mode` with a small depth map (42 px short side),
/// the default settings otherwise.
pub fn request(input: &Path, output: &Path, mode: StereoMode) -> ConvertRequest {
    let mut r = ConvertRequest::new(input, output);
    r.mode = mode;
    r.settings = ConversionSettings {
        depth_resolution: Some(42),
        ..ConversionSettings::default()
    };
    r
}

/// Catches the normalisation state a conversion hands over when it ends
/// (`ConvertRequest::seam_end`).
pub struct EndState(Arc<Mutex<Option<NormState>>>);

impl EndState {
    /// Catches `req`'s end state.
    pub fn on(req: &mut ConvertRequest) -> Self {
        let end = Arc::new(Mutex::new(None));
        req.seam_end = Some(StateSink::new({
            let end = end.clone();
            move |s| *end.lock().unwrap() = Some(s)
        }));
        Self(end)
    }

    /// The state the conversion ended with; fails the test when none was handed over.
    pub fn take(&self) -> NormState {
        self.0
            .lock()
            .unwrap()
            .take()
            .expect("the end state was handed over")
    }
}

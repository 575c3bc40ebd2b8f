//! Device presets: the one table of named starting points (a 3D format plus the settings a
//! device needs), served to the upload page and the API (`GET /api/presets`), and the merge of
//! a preset with a request's own overrides. Every field not named by the overrides keeps the
//! preset's value; a field name that `ConversionSettings` does not have is refused.

use parallax_core::model::{AnaglyphMethod, ConversionSettings, StereoMode};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::{AppError, AppResult};

/// A named starting point for a device.
#[derive(Debug, Clone, Copy)]
pub struct Preset {
    /// Stable snake_case name, used by the API (`"preset": "quest"`).
    pub name: &'static str,
    /// What the upload page shows.
    pub label: &'static str,
    /// One sentence on what it makes and why.
    pub description: &'static str,
    /// The 3D format.
    pub mode: StereoMode,
    /// The settings it changes from the defaults.
    pub apply: fn(&mut ConversionSettings),
}

fn hevc(s: &mut ConversionSettings) {
    s.encoder = "libx265".to_owned();
}

fn hevc_10_bit(s: &mut ConversionSettings) {
    s.encoder = "libx265".to_owned();
    s.bit_depth = Some(10);
}

fn h264(s: &mut ConversionSettings) {
    s.encoder = "libx264".to_owned();
}

fn anaglyph(s: &mut ConversionSettings) {
    s.encoder = "libx264".to_owned();
    s.anaglyph_method = AnaglyphMethod::Dubois;
}

fn vr180(s: &mut ConversionSettings) {
    s.encoder = "libx264".to_owned();
    // YouTube re-encodes anyway; give it a clean master.
    s.crf = 18;
}

/// Every preset, in the order the upload page lists them. The first is the default.
pub const PRESETS: &[Preset] = &[
    Preset {
        name: "quest",
        label: "Meta Quest / Pico",
        description: "Full side-by-side in HEVC: full resolution per eye, played by the headsets' own players.",
        mode: StereoMode::FullSbs,
        apply: hevc,
    },
    Preset {
        name: "vision_pro",
        label: "Apple Vision Pro",
        description: "Full side-by-side in 10-bit HEVC. MV-HEVC (spatial video) is not available here: play it as full SBS (e.g. in Moon Player or Reality Player).",
        mode: StereoMode::FullSbs,
        apply: hevc_10_bit,
    },
    Preset {
        name: "tv_half_sbs",
        label: "3D TV (half side-by-side)",
        description: "Half side-by-side in H.264: the frame keeps the source's size, as 3D TVs and projectors expect.",
        mode: StereoMode::HalfSbs,
        apply: h264,
    },
    Preset {
        name: "tv_half_tb",
        label: "3D TV (half top-bottom)",
        description: "Half top-bottom in H.264, for TVs and projectors that take top-and-bottom 3D.",
        mode: StereoMode::HalfTb,
        apply: h264,
    },
    Preset {
        name: "anaglyph",
        label: "Red-cyan glasses (anaglyph)",
        description: "Red-cyan anaglyph (Dubois) in H.264: plays on any screen, seen through red-cyan glasses.",
        mode: StereoMode::Anaglyph,
        apply: anaglyph,
    },
    Preset {
        name: "youtube_vr180",
        label: "YouTube VR180",
        description: "VR180 (side-by-side, equirectangular, declared in the file) in H.264 at high quality, for uploading to YouTube.",
        mode: StereoMode::Vr180,
        apply: vr180,
    },
];

/// A preset as the page and the API show it: its whole settings, not only what it changes.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
#[schema(as = Preset)]
pub struct PresetView {
    /// Name.
    #[schema(schema_with = crate::openapi::preset_name)]
    pub name: &'static str,
    /// Label.
    pub label: &'static str,
    /// Description.
    pub description: &'static str,
    /// 3D format.
    pub mode: StereoMode,
    /// Every setting the preset gives.
    pub settings: ConversionSettings,
}

impl Preset {
    /// The preset's whole settings (the defaults with its changes).
    pub fn settings(&self) -> ConversionSettings {
        let mut s = ConversionSettings::default();
        (self.apply)(&mut s);
        s
    }

    /// Its view.
    pub fn view(&self) -> PresetView {
        PresetView {
            name: self.name,
            label: self.label,
            description: self.description,
            mode: self.mode,
            settings: self.settings(),
        }
    }
}

/// The preset called `name`, or 400 `unknown-preset` naming the ones there are.
pub fn find(name: &str) -> AppResult<&'static Preset> {
    PRESETS.iter().find(|p| p.name == name).ok_or_else(|| {
        let shown: String = name.chars().take(40).collect();
        let known: Vec<&str> = PRESETS.iter().map(|p| p.name).collect();
        AppError::bad_request(
            "unknown-preset",
            format!(
                "there is no preset {shown:?}; use one of {}",
                known.join(", ")
            ),
        )
    })
}

/// The names of every field of [`ConversionSettings`], read from its serialised form, so a
/// field added to it is known here without a second list.
pub fn setting_names() -> Vec<String> {
    match serde_json::to_value(ConversionSettings::default()) {
        Ok(Value::Object(m)) => m.keys().cloned().collect(),
        _ => Vec::new(),
    }
}

/// `base` with the fields of `overrides` (a JSON object) written over it, then validated.
/// A field that settings do not have is 400 `unknown-setting`; a value of the wrong type is
/// 400 `invalid-settings`; a value out of range is 400 `invalid-input` (the core's check).
pub fn merge(
    base: &ConversionSettings,
    overrides: Option<&Value>,
) -> AppResult<ConversionSettings> {
    let overrides = match overrides {
        None | Some(Value::Null) => return validated(base.clone()),
        Some(Value::Object(m)) => m,
        Some(_) => {
            return Err(AppError::bad_request(
                "invalid-settings",
                "settings must be a JSON object of setting names and values",
            ))
        }
    };
    let known = setting_names();
    let unknown: Vec<String> = overrides
        .keys()
        .filter(|k| !known.iter().any(|n| n == *k))
        .map(|k| format!("{:?}", k.chars().take(40).collect::<String>()))
        .collect();
    if !unknown.is_empty() {
        return Err(AppError::bad_request(
            "unknown-setting",
            format!(
                "unknown setting {}; the settings are {}",
                unknown.join(", "),
                known.join(", ")
            ),
        ));
    }
    let mut merged: Map<String, Value> = match serde_json::to_value(base) {
        Ok(Value::Object(m)) => m,
        Ok(_) | Err(_) => Map::new(),
    };
    for (k, v) in overrides {
        merged.insert(k.clone(), v.clone());
    }
    let settings: ConversionSettings =
        serde_json::from_value(Value::Object(merged)).map_err(|e| {
            AppError::bad_request(
                "invalid-settings",
                format!("a setting has the wrong type: {e}"),
            )
        })?;
    validated(settings)
}

fn validated(s: ConversionSettings) -> AppResult<ConversionSettings> {
    s.validate()?;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_preset_is_valid_and_named_once() {
        for (i, p) in PRESETS.iter().enumerate() {
            p.settings().validate().unwrap();
            assert!(
                PRESETS[i + 1..].iter().all(|q| q.name != p.name),
                "{}",
                p.name
            );
        }
        assert_eq!(find("vision_pro").unwrap().settings().bit_depth, Some(10));
        assert_eq!(find("nope").unwrap_err().code, "unknown-preset");
    }

    #[test]
    fn overrides_win_and_unknown_fields_are_refused() {
        let base = find("quest").unwrap().settings();
        let s = merge(&base, Some(&json!({"divergence": 4.5, "crf": 23}))).unwrap();
        assert_eq!(
            (s.divergence, s.crf, s.encoder.as_str()),
            (4.5, 23, "libx265")
        );
        assert_eq!(
            merge(&base, Some(&json!({"colour": 1}))).unwrap_err().code,
            "unknown-setting"
        );
        assert_eq!(
            merge(&base, Some(&json!({"crf": "x"}))).unwrap_err().code,
            "invalid-settings"
        );
        assert_eq!(
            merge(&base, Some(&json!({"crf": 99}))).unwrap_err().code,
            "invalid-input"
        );
        assert_eq!(
            merge(&base, Some(&json!([1]))).unwrap_err().code,
            "invalid-settings"
        );
    }
}

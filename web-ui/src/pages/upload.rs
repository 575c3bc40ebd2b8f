//! The upload page: files, a device preset, the 3D format and strength, and every setting in
//! the advanced section.

use axum::extract::State;
use axum::response::Response;
use axum::Extension;
use maud::{html, Markup};
use parallax_core::model::{ConversionSettings, StereoMode};

use super::{mode_label, page, size};
use crate::security::CsrfToken;
use crate::AppState;

/// How one setting is entered on the upload page.
#[derive(Debug, Clone, Copy)]
enum Input {
    /// A number in `min..=max` by `step`.
    Number(f32, f32, f32),
    /// A number that may be left empty (`null`: the default behaviour named by the hint).
    Optional(u32, u32, u32, &'static str),
    /// A checkbox.
    Check,
    /// One of these values (value, label); an empty value is sent as `null`.
    Choice(&'static [(&'static str, &'static str)]),
}

/// Every `ConversionSettings` field on the upload page: (field, label, hint, input), in the
/// order shown. A test checks that the list and the settings' fields agree (but for
/// `NOT_IN_FORM`, which only the test needs).
const SETTING_INPUTS: &[(&str, &str, &str, Input)] = &[
    (
        "divergence",
        "3D strength",
        "% of the frame width",
        Input::Number(0.0, 10.0, 0.1),
    ),
    (
        "convergence",
        "Convergence",
        "0 = far, 1 = near sits on the screen",
        Input::Number(0.0, 1.0, 0.01),
    ),
    (
        "auto_convergence",
        "Automatic convergence",
        "from each frame's depth",
        Input::Check,
    ),
    (
        "foreground_scale",
        "Foreground scale",
        "-3 to 3: more or less 3D for near things",
        Input::Number(-3.0, 3.0, 0.1),
    ),
    (
        "ipd_offset",
        "IPD offset",
        "% of the width, positive = behind the screen",
        Input::Number(-5.0, 5.0, 0.1),
    ),
    (
        "edge_dilation",
        "Edge dilation",
        "depth-map pixels, 0 = off",
        Input::Number(0.0, 10.0, 1.0),
    ),
    (
        "depth_antialias",
        "Depth anti-aliasing",
        "soften jagged depth edges",
        Input::Check,
    ),
    (
        "preserve_screen_border",
        "Preserve the screen border",
        "floating window at the frame edges",
        Input::Check,
    ),
    (
        "synthetic_view",
        "Synthetic view",
        "which eye's view is made",
        Input::Choice(&[
            ("both", "Both (each half the shift)"),
            ("left", "Right only (left eye sees the original)"),
            ("right", "Left only (right eye sees the original)"),
        ]),
    ),
    (
        "anaglyph_method",
        "Anaglyph method",
        "for the anaglyph format",
        Input::Choice(&[
            ("dubois", "Dubois"),
            ("color", "Colour"),
            ("half_color", "Half colour"),
            ("gray", "Grey"),
            ("wimmer", "Wimmer"),
        ]),
    ),
    (
        "ema_decay",
        "Temporal smoothing",
        "0 = none, closer to 1 = smoother",
        Input::Number(0.0, 0.99, 0.01),
    ),
    (
        "depth_resolution",
        "Depth resolution",
        "pixels, empty = the worker's default",
        Input::Optional(14, 2048, 1, "worker default"),
    ),
    (
        "fast_depth",
        "Fast depth",
        "model on keyframes only; auto = on a CPU",
        Input::Choice(&[
            ("auto", "Automatic (on a CPU)"),
            ("on", "Always"),
            ("off", "Never (every frame)"),
        ]),
    ),
    (
        "keyframe_interval",
        "Keyframe interval",
        "fast depth: frames between model runs, 1 to 60",
        Input::Number(1.0, 60.0, 1.0),
    ),
    (
        "fast_depth_scale",
        "Fast depth scale",
        "fast depth: model input size, 0.25 to 1",
        Input::Number(0.25, 1.0, 0.05),
    ),
    (
        "encoder",
        "Encoder",
        "H.264 plays everywhere, HEVC is smaller",
        Input::Choice(&[
            ("libx264", "H.264 (libx264)"),
            ("libx265", "HEVC (libx265)"),
            ("h264_nvenc", "H.264 on NVIDIA (h264_nvenc)"),
            ("hevc_nvenc", "HEVC on NVIDIA (hevc_nvenc)"),
        ]),
    ),
    (
        "crf",
        "Quality (CRF)",
        "0 to 51, lower = better and larger",
        Input::Number(0.0, 51.0, 1.0),
    ),
    (
        "bit_depth",
        "Bit depth",
        "10-bit needs HEVC",
        Input::Choice(&[("", "Follow the source"), ("8", "8-bit"), ("10", "10-bit")]),
    ),
    (
        "tone_map",
        "Tone-map HDR to SDR",
        "even where 10-bit HEVC could keep HDR",
        Input::Check,
    ),
    (
        "deinterlace",
        "Deinterlace",
        "interlaced sources, before depth",
        Input::Check,
    ),
    (
        "max_output_width",
        "Max output width",
        "pixels (even), empty = no cap",
        Input::Optional(64, 16384, 2, "no cap"),
    ),
    // The depth model (`model`, a catalogue name) gets its chooser here once the settings
    // have it; see NOT_IN_FORM.
];

/// Settings not in `SETTING_INPUTS`: `model` is chosen from the model catalogue
/// ([`model_field`]).
#[cfg(test)]
const NOT_IN_FORM: &[&str] = &["model"];

/// The depth-model chooser, when the catalogue offers more than one model: the workers'
/// default, or a catalogue model by name.
fn model_field(state: &AppState) -> Markup {
    let Some(cat) = state
        .config
        .catalogue
        .as_ref()
        .filter(|c| c.models.len() > 1)
    else {
        return Markup::default();
    };
    html! {
        label class="setting" for="set-model" {
            span {
                "Depth model "
                small class="muted" { "a model of the catalogue; a job waits for a worker that holds it" }
            }
            select id="set-model" data-setting="model" data-kind="optional-text" {
                option value="" selected { "The workers' default" }
                @for m in &cat.models {
                    option value=(m.name) { (m.name) " (" (m.kind_label()) ", " (m.licence) ")" }
                }
            }
        }
    }
}

/// The `value` attribute of a setting's input from its JSON value (`null` = empty). Numbers
/// are written as the shortest `f32` that reads back the same (settings are `f32` or small
/// integers): `0.9`, not the widened `0.8999999761581421` that the input's step refuses.
fn input_value(v: Option<&serde_json::Value>) -> String {
    match v {
        None | Some(serde_json::Value::Null) => String::new(),
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Number(n)) if n.is_f64() => n
            .as_f64()
            .map(|f| (f as f32).to_string())
            .unwrap_or_default(),
        Some(other) => other.to_string(),
    }
}

/// One setting's input, filled with `value`.
fn setting_control(id: &str, name: &str, input: Input, value: &str) -> Markup {
    match input {
        Input::Number(min, max, step) => html! {
            input type="number" id=(id) data-setting=(name) data-kind="number" min=(min) max=(max)
                step=(step) value=(value) required;
        },
        Input::Optional(min, max, step, placeholder) => html! {
            input type="number" id=(id) data-setting=(name) data-kind="optional" min=(min) max=(max)
                step=(step) value=(value) placeholder=(placeholder);
        },
        Input::Check => html! {
            input type="checkbox" id=(id) data-setting=(name) data-kind="check" checked[value == "true"];
        },
        Input::Choice(options) => {
            let kind = if options.iter().any(|(v, _)| v.is_empty()) {
                "optional"
            } else {
                "text"
            };
            html! {
                select id=(id) data-setting=(name) data-kind=(kind) {
                    @for (v, l) in options {
                        option value=(v) selected[*v == value] { (l) }
                    }
                }
            }
        }
    }
}

/// The advanced section: one input per setting, filled with the defaults. The inputs carry
/// `data-setting` (the field) and `data-kind` (how the script reads them back).
fn settings_fields() -> Markup {
    let defaults = serde_json::to_value(ConversionSettings::default()).unwrap_or_default();
    html! {
        @for (name, label, hint, input) in SETTING_INPUTS {
            @let id = format!("set-{name}");
            label class="setting" for=(id) {
                // The script names an invalid setting by this span's first text.
                span { (label) " " small class="muted" { (hint) } }
                (setting_control(&id, name, *input, &input_value(defaults.get(*name))))
            }
        }
    }
}

/// `GET /upload`: pick or drop one or more files, pick a device preset (which fills every
/// setting) or set them one by one in the advanced section, watch the uploads. Several files
/// make several jobs with the same settings.
pub async fn upload(
    State(state): State<AppState>,
    Extension(csrf): Extension<CsrfToken>,
) -> Response {
    let table: Vec<crate::presets::PresetView> =
        crate::presets::PRESETS.iter().map(|p| p.view()).collect();
    let defaults = crate::presets::PresetView {
        name: "",
        label: "Defaults",
        description: "Full side-by-side in H.264 with every default setting.",
        mode: StereoMode::default(),
        settings: ConversionSettings::default(),
    };
    // JSON in an attribute: maud escapes its quotes like any other value.
    let presets_json = serde_json::to_string(&(defaults, table)).unwrap_or_default();
    let extensions = crate::api::create::VIDEO_EXTENSIONS;
    let accept: Vec<String> = extensions.iter().map(|e| format!(".{e}")).collect();
    let max = state.config.max_upload_bytes;
    let samples = parallax_core::model::PREVIEW_SAMPLES;
    let secs = parallax_core::model::PREVIEW_SAMPLE_SECS;
    let body = html! {
        h1 { "Convert videos to 3D" }
        form id="upload-form" data-max-bytes=(max) data-extensions=(extensions.join(","))
            data-presets=(presets_json) novalidate {
            label class="drop" id="drop" {
                span { "Drop videos here or " u { "choose files" } }
                input type="file" id="file" name="file" accept={ "video/*," (accept.join(",")) }
                    multiple required;
            }
            p class="hint" {
                "At most " (size(Some(max))) " each. Several files make one job each, with the same settings."
            }
            label { "Title " input type="text" id="title" name="title" maxlength="200" placeholder="from the file name"; }
            label {
                "Device "
                select id="preset" name="preset" {
                    option value="" { "Defaults (full side-by-side, H.264)" }
                    @for p in crate::presets::PRESETS {
                        option value=(p.name) { (p.label) }
                    }
                }
            }
            p class="hint" id="preset-description" { "Full side-by-side in H.264 with every default setting." }
            label {
                "3D format "
                select id="mode" name="mode" {
                    @for m in StereoMode::ALL {
                        option value=(m.as_str()) { (mode_label(m)) }
                    }
                }
            }
            label {
                "3D strength "
                span class="range" {
                    input type="range" id="divergence" min="0" max="10" step="0.1" value="2";
                    " "
                    output id="divergence-value" { "2" }
                    "\u{a0}% of the width"
                }
            }
            label class="check" {
                input type="checkbox" id="preview" name="preview";
                " Preview first: convert " (samples) " samples of about " (secs)
                " s spread over the video, then “Convert all” from the job page"
            }
            details id="advanced" {
                summary { "Advanced settings" }
                div class="settings" { (settings_fields()) (model_field(&state)) }
            }
            button type="submit" id="start" { "Upload and convert" }
        }
        div id="upload-progress" hidden {
            progress id="progress" max="100" value="0" {}
            " "
            span id="progress-text" { "0 %" }
        }
        p id="upload-status" role="status" {}
        ul id="upload-jobs" class="upload-jobs" {}
    };
    page(&state, "Upload", &csrf, body)
}

#[cfg(test)]
mod tests {
    use super::{input_value, NOT_IN_FORM, SETTING_INPUTS};

    #[test]
    fn setting_values_are_written_as_entered() {
        let v = serde_json::to_value(0.9f32).unwrap();
        assert_eq!(input_value(Some(&v)), "0.9");
        assert_eq!(input_value(Some(&serde_json::json!(20))), "20");
        assert_eq!(input_value(Some(&serde_json::json!(null))), "");
        assert_eq!(input_value(Some(&serde_json::json!("libx264"))), "libx264");
    }

    #[test]
    fn the_upload_form_offers_every_setting() {
        let names = crate::presets::setting_names();
        for n in &names {
            assert!(
                SETTING_INPUTS.iter().any(|(f, ..)| f == n) || NOT_IN_FORM.contains(&n.as_str()),
                "setting {n} has no input on the upload page"
            );
        }
        for (f, ..) in SETTING_INPUTS {
            assert!(names.iter().any(|n| n == f), "{f} is not a setting");
        }
    }
}

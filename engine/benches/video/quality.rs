//! The picture's figures, on generated scenes whose depth is known (`make bench-quality`):
//!
//! - `disparity_error_px`: planes at known depths in a textured frame, rendered with the
//!   default settings; the left/right shift of each plane is measured by block matching
//!   (sub-pixel) and compared with `divergence` and `convergence`; the mean absolute error
//!   over planes and divergences, in pixels.
//! - `edge_artifact_ratio`: a textured foreground square (depth 1) over a textured background
//!   (depth 0); the renderer gets the depth a model gives, at half the resolution and
//!   soft at the edges, and its left view is compared with the left view rendered from the
//!   exact, full-resolution depth. An artifact pixel is one where the object is wrong: one
//!   view shows the object there and the other does not (its outline torn off into the
//!   background, or smeared over it), or both show it but its luma is more than
//!   [`ARTIFACT_LEVELS`] off (the object deformed). Background that differs only as
//!   background is not counted (a disocclusion reveals what was never seen; background
//!   sliding under the object is parallax). The ratio is the count with the default
//!   settings over the count with the edge fix off (everything else as the default), so
//!   below 1 means fewer artifacts.
//! - `static_flicker` and `seam_jump`: the temporal side, through the engine with the default
//!   model; see [`static_flicker`] and [`seam_jump`].

use std::path::{Path, PathBuf};

use parallax_core::model::{ConversionSettings, StereoMode};
use parallax_engine::stereo::{output_size, DepthMap, StereoParams, StereoRenderer, Yuv420};
use parallax_engine::{ConvertRequest, Engine, SeamStart};

use super::default_engine;

/// A luma difference past which a pixel counts as an artifact (of 219 levels).
pub const ARTIFACT_LEVELS: i32 = 24;

/// A deterministic xorshift in 0..1.
fn rng(seed: u64) -> impl FnMut() -> f32 {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 40) as f32 / (1u64 << 24) as f32
    }
}

/// A frame of smooth random texture (sums of sines per row and column), so block matching
/// has structure everywhere; `phase` changes the pattern.
fn texture(w: usize, h: usize, seed: u64) -> Yuv420 {
    let mut next = rng(seed);
    let k: Vec<f32> = (0..8).map(|_| next() * 6.0).collect();
    let mut f = Yuv420::<u8>::new(w, h);
    let (y, _, _) = f.planes_mut();
    for (i, p) in y.iter_mut().enumerate() {
        let (x, yy) = ((i % w) as f32, (i / w) as f32);
        let v = 126.0
            + 40.0 * (x * 0.11 + k[0]).sin() * (yy * 0.05 + k[1]).cos()
            + 30.0 * (x * 0.31 + k[2] + yy * 0.07).sin()
            + 20.0 * (x * 0.53 + k[3]).cos()
            + 12.0 * (yy * 0.41 + k[4] + x * 0.02).sin();
        *p = v.clamp(16.0, 235.0) as u8;
    }
    f
}

/// The shift `s` (sub-pixel) that best maps `r` onto `l` (`l[x] ≈ r[x - s]`), by the least
/// squared difference over `l[margin..w - margin]` and a parabola through the best three.
fn measure_shift(l: &[u8], r: &[u8], margin: usize, max: i32) -> f64 {
    let w = l.len();
    let cost = |s: i32| -> f64 {
        (margin..w - margin)
            .map(|x| {
                let d = f64::from(l[x]) - f64::from(r[(x as i32 - s) as usize]);
                d * d
            })
            .sum()
    };
    let best = (-max..=max)
        .min_by(|a, b| cost(*a).total_cmp(&cost(*b)))
        .expect("a shift");
    let (cm, c0, cp) = (cost(best - 1), cost(best), cost(best + 1));
    let den = cm - 2.0 * c0 + cp;
    best as f64
        + if den > 0.0 {
            0.5 * (cm - cp) / den
        } else {
            0.0
        }
}

/// `disparity_error_px`: the mean absolute error of the measured shift of planes at known
/// depths, over divergences of 1, 2, 3 and 5 % and convergences of 0.3 and 0.5.
pub fn disparity_error_px() -> f64 {
    let (w, h) = (640, 240);
    let src = texture(w, h, 11);
    let planes = [0.0f32, 0.25, 0.5, 0.75, 1.0];
    let band = h / planes.len();
    // The depth map a model gives: half resolution, bands of constant depth.
    let (dw, dh) = (w / 2, h / 2);
    let mut depth = DepthMap::new(dw, dh);
    for (i, z) in depth.data.iter_mut().enumerate() {
        *z = planes[((i / dw) * 2 / band).min(planes.len() - 1)];
    }
    let mut errors = Vec::new();
    for divergence in [1.0f32, 2.0, 3.0, 5.0] {
        for convergence in [0.3f32, 0.5] {
            let mut params = StereoParams::from_settings(&ConversionSettings::default());
            params.divergence = divergence;
            params.convergence = convergence;
            let (ow, oh) = output_size(StereoMode::FullSbs, w, h);
            let mut out = Yuv420::<u8>::new(ow, oh);
            StereoRenderer::<u8>::new(w, h, dw, dh).render(
                &src,
                &depth,
                params,
                StereoMode::FullSbs,
                &mut out,
            );
            let (y, _, _) = out.planes();
            for (p, &z) in planes.iter().enumerate() {
                // Rows well inside the band (away from the depth steps between planes).
                let rows = p * band + band / 4..(p + 1) * band - band / 4;
                let expected = f64::from(params.disparity_px(z, w));
                let max = expected.abs().ceil() as i32 + 3;
                let measured: f64 = rows
                    .clone()
                    .map(|r| {
                        let row = &y[r * ow..][..ow];
                        measure_shift(&row[..w], &row[w..], max as usize + 8, max)
                    })
                    .sum::<f64>()
                    / rows.len() as f64;
                errors.push((measured - expected).abs());
            }
        }
    }
    errors.iter().sum::<f64>() / errors.len() as f64
}

/// The scene of `edge_artifact_ratio`: background texture, a foreground square with its own
/// texture, a mask frame (the square white on black) to follow the object through the warp,
/// the exact depth at full resolution, and the depth a model gives.
struct EdgeScene {
    src: Yuv420,
    mask: Yuv420,
    exact: DepthMap,
    model: DepthMap,
}

fn edge_scene(w: usize, h: usize) -> EdgeScene {
    let back = texture(w, h, 3);
    let front = texture(w, h, 5);
    let inside =
        |x: usize, y: usize| (w * 3 / 8..w * 5 / 8).contains(&x) && (h / 4..h * 3 / 4).contains(&y);
    let mut src = back.clone();
    let mut mask = Yuv420::<u8>::new(w, h);
    {
        let (sy, _, _) = src.planes_mut();
        let (fy, _, _) = front.planes();
        let (my, _, _) = mask.planes_mut();
        for (i, (p, m)) in sy.iter_mut().zip(my.iter_mut()).enumerate() {
            if inside(i % w, i / w) {
                *p = fy[i];
                *m = 235;
            }
        }
    }
    let exact = DepthMap {
        width: w,
        height: h,
        data: (0..w * h)
            .map(|i| if inside(i % w, i / w) { 1.0 } else { 0.0 })
            .collect(),
    };
    // Half the resolution (as the default 518-row depth of a 1080p source) by area
    // averaging, then a 3x3 box blur: soft edges whose middle sits on the true outline, as
    // a depth model's output looks.
    let (dw, dh) = (w / 2, h / 2);
    let mut small = DepthMap::new(dw, dh);
    for (i, z) in small.data.iter_mut().enumerate() {
        let (x, y) = (i % dw, i / dw);
        let mut sum = 0.0;
        for yy in 2 * y..2 * y + 2 {
            for xx in 2 * x..2 * x + 2 {
                sum += exact.data[yy * w + xx];
            }
        }
        *z = sum / 4.0;
    }
    let mut model = small.clone();
    for y in 0..dh {
        for x in 0..dw {
            let mut sum = 0.0;
            let mut n = 0.0;
            for yy in y.saturating_sub(1)..(y + 2).min(dh) {
                for xx in x.saturating_sub(1)..(x + 2).min(dw) {
                    sum += small.data[yy * dw + xx];
                    n += 1.0;
                }
            }
            model.data[y * dw + x] = sum / n;
        }
    }
    EdgeScene {
        src,
        mask,
        exact,
        model,
    }
}

/// Artifact pixels of the left view rendered from the model's depth with `params`, against
/// the left view rendered from the exact depth (no shaping): pixels where one view shows the
/// object and the other does not (a torn or smeared outline), and pixels of the object whose
/// luma is more than [`ARTIFACT_LEVELS`] off (a deformed object). Background that differs
/// only as background (what a disocclusion reveals was never seen, and background sliding
/// under the object is parallax) is not counted.
/// Returns the artifact count, and beside it the background pixels (both views show
/// background there) that differ by more than [`ARTIFACT_LEVELS`]: what the edge fix costs,
/// since it moves some background with the object.
fn artifact_pixels(scene: &EdgeScene, params: StereoParams) -> (usize, usize) {
    let (w, h) = (scene.src.width, scene.src.height);
    let (ow, oh) = output_size(StereoMode::FullSbs, w, h);
    let render = |frame: &Yuv420, depth: &DepthMap, params: StereoParams| {
        let mut out = Yuv420::<u8>::new(ow, oh);
        StereoRenderer::<u8>::new(w, h, depth.width, depth.height).render(
            frame,
            depth,
            params,
            StereoMode::FullSbs,
            &mut out,
        );
        out.planes()
            .0
            .chunks(ow)
            .flat_map(|r| r[..w].to_vec())
            .collect::<Vec<u8>>()
    };
    let exact_params = StereoParams {
        shaping: Default::default(),
        ..params
    };
    let truth = render(&scene.src, &scene.exact, exact_params);
    let truth_mask = render(&scene.mask, &scene.exact, exact_params);
    let got = render(&scene.src, &scene.model, params);
    let got_mask = render(&scene.mask, &scene.model, params);
    let (mut object, mut background) = (0, 0);
    for i in 0..w * h {
        let (t_obj, g_obj) = (truth_mask[i] > 125, got_mask[i] > 125);
        let off = (i32::from(truth[i]) - i32::from(got[i])).abs() > ARTIFACT_LEVELS;
        if t_obj != g_obj || (t_obj && off) {
            object += 1;
        } else if off {
            background += 1;
        }
    }
    (object, background)
}

/// `edge_artifact_ratio`, and the (object, background) counts with the default settings and
/// with the edge fix off.
pub fn edge_artifact_ratio() -> (f64, (usize, usize), (usize, usize)) {
    let scene = edge_scene(640, 360);
    let mut params = StereoParams::from_settings(&ConversionSettings::default());
    // A strong effect, so edges matter: 4 % of the width, the background on the screen.
    params.divergence = 4.0;
    params.convergence = 0.0;
    let with = artifact_pixels(&scene, params);
    let mut off = params;
    off.shaping.edge_dilation = 0;
    let without = artifact_pixels(&scene, off);
    (with.0 as f64 / without.0.max(1) as f64, with, without)
}

/// (object, background) counts for edge fix widths 0..=6 (to choose the default).
pub fn edge_dilation_sweep() -> Vec<(u8, (usize, usize))> {
    let scene = edge_scene(640, 360);
    let mut params = StereoParams::from_settings(&ConversionSettings::default());
    params.divergence = 4.0;
    params.convergence = 0.0;
    (0..=6)
        .map(|r| {
            let mut p = params;
            p.shaping.edge_dilation = r;
            (r, artifact_pixels(&scene, p))
        })
        .collect()
}

/// Runs ffmpeg with `args` (for the scenes' clips).
fn ffmpeg(args: &[&str]) {
    let st = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
        .args(args)
        .status()
        .expect("running ffmpeg");
    assert!(st.success(), "ffmpeg {args:?} failed");
}

/// Every frame's luma plane of `path` (8-bit), and the frame width.
fn luma_frames(path: &Path) -> (Vec<Vec<u8>>, usize) {
    let probe = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
        .args(["stream=width,height", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .expect("running ffprobe");
    let text = String::from_utf8_lossy(&probe.stdout);
    let mut dims = text.trim().trim_end_matches(',').split(',');
    let w: usize = dims.next().and_then(|v| v.parse().ok()).expect("a width");
    let h: usize = dims.next().and_then(|v| v.parse().ok()).expect("a height");
    let out = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-f", "rawvideo", "-pix_fmt", "gray", "pipe:1"])
        .output()
        .expect("running ffmpeg");
    (out.stdout.chunks(w * h).map(<[u8]>::to_vec).collect(), w)
}

/// The mean absolute change between consecutive depth frames (grey levels of a depth-map
/// video, 16 = far .. 235 = near), one value per pair.
fn depth_changes(frames: &[Vec<u8>]) -> Vec<f64> {
    frames
        .windows(2)
        .map(|p| {
            let s: f64 = p[0]
                .iter()
                .zip(&p[1])
                .map(|(a, b)| (f64::from(*a) - f64::from(*b)).abs())
                .sum();
            s / p[0].len() as f64
        })
        .collect()
}

/// Depth-map video of `input` from `seam`, losslessly encoded: its frames.
async fn depth_video(eng: &Engine, input: &Path, out: &Path, seam: SeamStart) -> Vec<Vec<u8>> {
    let mut req = ConvertRequest::new(input, out);
    req.mode = StereoMode::DepthMap;
    req.settings.crf = 0;
    req.seam = seam;
    eng.convert(&req, &|_| {}).await.expect("converting");
    luma_frames(out).0
}

/// `static_flicker`: a still picture held for 60 frames with a camera's temporal noise
/// (ffmpeg's `noise`, strength 4), compressed (x264, crf 23), converted with the default model and settings: the mean frame-to-frame
/// change of the disparity, in pixels of a 1920-wide full SBS view at the default
/// divergence (2 %). Zero means the depth of a still scene does not move.
pub async fn static_flicker(dir: &Path) -> f64 {
    let src = dir.join("static.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=640x360:rate=25,trim=end_frame=1,loop=loop=59:size=1,setpts=N/25/TB,noise=alls=4:allf=t",
        "-c:v",
        "libx264",
        "-crf",
        "23",
        "-pix_fmt",
        "yuv420p",
        src.to_str().expect("a UTF-8 path"),
    ]);
    let frames = depth_video(
        &default_engine(),
        &src,
        &dir.join("static-depth.mkv"),
        SeamStart::Fresh,
    )
    .await;
    let changes = depth_changes(&frames);
    let mean_levels = changes.iter().sum::<f64>() / changes.len().max(1) as f64;
    let divergence = f64::from(ConversionSettings::default().divergence);
    mean_levels / 219.0 * divergence / 100.0 * 1920.0
}

/// `seam_jump`: a 90-frame clip whose brightness drifts (so the depth range moves), cut at
/// keyframes into three segments as media-worker cuts them and converted one by one as the
/// fleet does (each after the previous segment's last 30 frames as warm-up): the depth
/// change across each seam over the median change inside the segments; the worse seam.
pub async fn seam_jump(dir: &Path) -> f64 {
    let src = dir.join("drift.mkv");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=320x180:rate=25,eq=brightness='0.3*sin(2*PI*t/5)':contrast='1+0.4*sin(2*PI*t/3)':eval=frame",
        "-frames:v",
        "90",
        "-c:v",
        "libx264",
        "-qp",
        "0",
        "-g",
        "30",
        "-keyint_min",
        "30",
        "-sc_threshold",
        "0",
        "-pix_fmt",
        "yuv420p",
        src.to_str().expect("a UTF-8 path"),
    ]);
    ffmpeg(&[
        "-i",
        src.to_str().expect("a UTF-8 path"),
        "-map",
        "0:v",
        "-c",
        "copy",
        "-f",
        "segment",
        "-segment_frames",
        "30,60",
        "-reset_timestamps",
        "1",
        dir.join("drift-seg%d.mkv").to_str().expect("a UTF-8 path"),
    ]);
    let eng = default_engine();
    let segs: Vec<PathBuf> = (0..3)
        .map(|i| dir.join(format!("drift-seg{i}.mkv")))
        .collect();
    let mut frames = Vec::new();
    for (i, s) in segs.iter().enumerate() {
        let seam = match i {
            0 => SeamStart::Fresh,
            _ => SeamStart::Warmup {
                previous: segs[i - 1].clone(),
                frames: 30,
            },
        };
        frames.extend(depth_video(&eng, s, &dir.join(format!("drift-depth{i}.mkv")), seam).await);
    }
    let changes = depth_changes(&frames);
    let seams = [29usize, 59];
    let mut inside: Vec<f64> = changes
        .iter()
        .enumerate()
        .filter(|(i, _)| !seams.contains(i))
        .map(|(_, v)| *v)
        .collect();
    inside.sort_by(f64::total_cmp);
    let median = inside[inside.len() / 2].max(1e-9);
    seams
        .iter()
        .map(|&s| changes[s] / median)
        .fold(0.0, f64::max)
}

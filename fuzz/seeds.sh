#!/usr/bin/env bash
# Writes the fuzz targets' seed files with ffmpeg: tiny clips of the shapes media-worker
# reads (docs/fuzzing.md). Usage: fuzz/seeds.sh OUT_DIR  (makes OUT_DIR/mp4_index and
# OUT_DIR/mkv_join). Tiny pictures and few frames keep every seed at a few KiB, so the
# fuzzer spends its time on the containers, not on sample bytes.
set -euo pipefail
out=${1:?usage: $0 OUT_DIR}
rm -rf "$out/mp4_index" "$out/mkv_join"
mkdir -p "$out/mp4_index" "$out/mkv_join"
ff() { ffmpeg -v error -y -nostdin "$@"; }
# 16 frames of 32x32 video at 8 fps, a keyframe every 4 frames (several segments per clip).
src=(-f lavfi -i testsrc2=size=32x32:rate=8:duration=2)
tone=(-f lavfi -i sine=frequency=440:sample_rate=8000:duration=0.5)
x264=(-c:v libx264 -preset ultrafast -g 4 -keyint_min 4 -sc_threshold 0)
x265=(-c:v libx265 -preset ultrafast -x265-params log-level=none:keyint=4:min-keyint=4:scenecut=0)

m=$out/mp4_index
ff "${src[@]}" "${x264[@]}" -bf 0 -pix_fmt yuv420p -movflags +faststart "$m/h264-faststart.mp4"
ff "${src[@]}" "${tone[@]}" "${x264[@]}" -bf 2 -pix_fmt yuv420p -c:a aac -ac 1 -b:a 16k "$m/h264-bframes-aac.mp4"
ff "${src[@]}" "${x264[@]}" -bf 0 -pix_fmt yuvj420p "$m/h264-full-range.mp4"
ff "${src[@]}" "${x264[@]}" -bf 0 -pix_fmt yuv444p -profile:v high444 "$m/h264-444.mp4"
ff "${src[@]}" "${x265[@]}" -pix_fmt yuv420p10le -tag:v hvc1 "$m/hevc10.mp4"
ff "${src[@]}" "${tone[@]}" "${x264[@]}" -bf 0 -pix_fmt yuv420p -c:a pcm_s16le "$m/pcm.mov"
ff "${src[@]}" "${x264[@]}" -bf 0 -pix_fmt yuv420p -display_rotation 90 "$m/rotated.mp4" 2>/dev/null ||
  ff "${src[@]}" "${x264[@]}" -bf 0 -pix_fmt yuv420p -metadata:s:v rotate=90 "$m/rotated.mp4"
printf '1\n00:00:00,000 --> 00:00:01,000\nhi\n' >"$m/subs.srt"
ff "${src[@]}" -i "$m/subs.srt" -map 0 -map 1 "${x264[@]}" -bf 0 -pix_fmt yuv420p -c:s mov_text \
  -metadata:s:s:0 language=eng "$m/h264-subs.mp4"
rm "$m/subs.srt"
ff "${src[@]}" "${x264[@]}" -bf 0 -pix_fmt yuv420p -movflags frag_keyframe+empty_moov "$m/fragmented.mp4"

k=$out/mkv_join
# Converted segments as video-workers write them, in several clusters.
ff "${src[@]}" "${x264[@]}" -bf 2 -pix_fmt yuv420p -cluster_time_limit 500 "$k/h264.mkv"
ff "${src[@]}" "${x265[@]}" -pix_fmt yuv420p10le -cluster_time_limit 500 "$k/hevc10.mkv"
ff "${src[@]}" "${x264[@]}" -bf 0 -pix_fmt yuv420p -write_crc32 0 "$k/h264-no-crc.mkv"
# Unknown-size segment and clusters, as a live muxer writes them.
ff "${src[@]}" "${x264[@]}" -bf 0 -pix_fmt yuv420p -live 1 "$k/live.mkv"
# A subtitle stream: its blocks are BlockGroups.
printf '1\n00:00:00,000 --> 00:00:01,000\nhi\n' >"$k/subs.srt"
ff "${src[@]}" -i "$k/subs.srt" -map 0 -map 1 "${x264[@]}" -bf 0 -pix_fmt yuv420p -c:s srt "$k/h264-subs.mkv"
rm "$k/subs.srt"
